"""Score one segment (species) with the trained model and write its predictions."""

import argparse
import pickle

import pandas as pd

from lakestack.runtime import local_path

parser = argparse.ArgumentParser()
parser.add_argument("--species", required=True)
parser.add_argument("--data", required=True)
parser.add_argument("--model", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

data = pd.read_csv(local_path(args.data))
segment = data[data["species"] == args.species]
with open(local_path(args.model), "rb") as f:
    model = pickle.load(f)
features = segment.drop(columns=["species"])
scored = segment.assign(prediction=model.predict(features))
out = local_path(args.out) / f"{args.species}.csv"
out.parent.mkdir(parents=True, exist_ok=True)
scored.to_csv(out, index=False)
accuracy = (scored["prediction"] == scored["species"]).mean()
print(f"{args.species}: {len(scored)} rows scored, accuracy {accuracy:.3f}")
