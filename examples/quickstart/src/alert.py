"""Runs only when the model is not good enough (the condition's false branch)."""

import sys

accuracy, minimum = sys.argv[1], sys.argv[2]
print(f"accuracy {accuracy} is below {minimum}: the model was not promoted to scoring")
