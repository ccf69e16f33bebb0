"""Synthetic customers with the IBM Telco customer churn schema (no download).

The reference project (seed 001) trains on IBM's Telco data set: 7,043 customers of a fictional
telco, 21 columns, 26.5% churn. This module makes customers like them, one batch per day, each
customer with the time it arrived. The marginals follow the data set (half month-to-month
contracts, 44% fiber optic, charges from about 18 to 119 a month, a U-shaped tenure) and churn
depends on what drives it there: the contract, the tenure, fiber optic, paying by electronic
check, no online security or tech support, the charges.

A *drifted* day is a price rise: customers who are not on a two-year contract pay more, and
the longer they have been customers (on old, cheaper plans) the more: 10% for a new customer,
40% after six years. The charges shift up, and churn rises with the size of the rise, so the
long-standing customers a model trained before the rise holds safe are now the ones who leave.

Everything is deterministic by ``seed``: a day's customers depend only on the seed, the day,
the number of rows and whether the day is drifted.
"""

from __future__ import annotations

import argparse
import zlib
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

__all__ = [
    "CATEGORICAL",
    "COLUMNS",
    "FEATURES",
    "NUMERIC",
    "START",
    "day_start",
    "generate_day",
    "generate_days",
    "held_out",
]

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
"""Midnight UTC of day 0."""

NUMERIC = ["SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges"]
CATEGORICAL = [
    "gender",
    "Partner",
    "Dependents",
    "PhoneService",
    "MultipleLines",
    "InternetService",
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
    "Contract",
    "PaperlessBilling",
    "PaymentMethod",
]
COLUMNS = [
    "customerID",
    "gender",
    "SeniorCitizen",
    "Partner",
    "Dependents",
    "tenure",
    "PhoneService",
    "MultipleLines",
    "InternetService",
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
    "Contract",
    "PaperlessBilling",
    "PaymentMethod",
    "MonthlyCharges",
    "TotalCharges",
    "Churn",
]
"""The IBM Telco columns, in the data set's order."""
FEATURES = [c for c in COLUMNS if c not in ("customerID", "Churn")]

ADD_ONS = {  # service: (share of internet customers who have it, monthly price)
    "OnlineSecurity": (0.37, 5.0),
    "OnlineBackup": (0.44, 5.0),
    "DeviceProtection": (0.44, 5.0),
    "TechSupport": (0.37, 5.0),
    "StreamingTV": (0.49, 10.0),
    "StreamingMovies": (0.50, 10.0),
}
PAYMENT_METHODS = [
    "Electronic check",
    "Mailed check",
    "Bank transfer (automatic)",
    "Credit card (automatic)",
]
LETTERS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))


def days_parser() -> argparse.ArgumentParser:
    """The arguments of the tasks that make a run of days: where, which days, how many rows."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--first-day", type=int, required=True)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--rows-per-day", type=int, required=True)
    parser.add_argument(
        "--drift-from", type=int, required=True, help="the first day of the price rise"
    )
    parser.add_argument("--seed", type=int, default=42)
    return parser


def day_start(day: int) -> pd.Timestamp:
    """Midnight UTC of ``day`` (day 0 is 2026-01-01)."""
    return pd.Timestamp(START + timedelta(days=day))


def held_out(customer_ids: pd.Series) -> np.ndarray:
    """Customers kept out of training for evaluation: one in five, by a hash of the id."""
    return np.array([zlib.crc32(c.encode()) % 5 == 0 for c in customer_ids], dtype=bool)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _yes(flags: np.ndarray) -> np.ndarray:
    return np.where(flags, "Yes", "No")


def generate_day(day: int, rows: int, *, seed: int = 42, drifted: bool = False) -> pd.DataFrame:
    """The customers who arrive on ``day``: the 21 IBM columns plus ``timestamp``.

    Args:
        day: The day number (0 is 2026-01-01). It makes the customer ids and the times.
        rows: How many customers.
        seed: The seed of the whole data set.
        drifted: Whether the price rise is in force (see the module docstring).

    Returns:
        One row per customer: ``customerID`` (``NNNN-XXXXX``, NNNN the day, unique across
        days), the features, ``Churn`` (``Yes``/``No``) and ``timestamp`` (UTC, within the day).
    """
    if rows < 1 or rows > 26**5:
        raise ValueError(f"rows must be between 1 and {26**5}, got {rows}")
    if day < 0 or day > 9999:
        raise ValueError(f"day must be between 0 and 9999, got {day}")
    rng = np.random.default_rng([seed, day])
    n = rows

    codes = rng.choice(26**5, size=n, replace=False)
    letters = LETTERS[(codes[:, None] // 26 ** np.arange(4, -1, -1)) % 26]
    customer_id = [f"{day:04d}-{''.join(w)}" for w in letters]
    seconds = np.sort(rng.integers(0, 86_400, n))
    timestamp = day_start(day) + pd.to_timedelta(seconds, unit="s")

    gender = rng.choice(["Male", "Female"], n)
    senior = (rng.random(n) < 0.16).astype("int64")
    partner = rng.random(n) < 0.48
    dependents = rng.random(n) < np.where(partner, 0.5, 0.1)
    # U-shaped tenure: many new customers, many of six years, the rest spread between
    kind = rng.choice(3, n, p=[0.3, 0.2, 0.5])
    tenure = np.select(
        [kind == 0, kind == 1],
        [1 + rng.exponential(5.0, n), rng.uniform(60, 73, n)],
        rng.uniform(1, 73, n),
    )
    tenure = np.where(rng.random(n) < 0.002, 0, np.clip(tenure, 1, 72)).astype("int64")
    loyalty = tenure / 72.0

    month_to_month = rng.random(n) < _sigmoid(2.2 - 0.06 * tenure)
    two_year = ~month_to_month & (rng.random(n) < _sigmoid(-1.5 + 0.045 * tenure))
    contract = np.select(
        [month_to_month, two_year], ["Month-to-month", "Two year"], "One year"
    ).astype(object)

    phone = rng.random(n) < 0.9
    internet = np.where(
        phone, rng.choice(["DSL", "Fiber optic", "No"], n, p=[0.267, 0.489, 0.244]), "DSL"
    ).astype(object)
    has_internet = internet != "No"
    fiber = internet == "Fiber optic"
    multiple = phone & (rng.random(n) < 0.35 + 0.25 * loyalty)
    frame = {
        "customerID": customer_id,
        "gender": gender,
        "SeniorCitizen": senior,
        "Partner": _yes(partner),
        "Dependents": _yes(dependents),
        "tenure": tenure,
        "PhoneService": _yes(phone),
        "MultipleLines": np.where(phone, _yes(multiple), "No phone service"),
        "InternetService": internet,
    }
    charges = 20.0 * phone + 5.0 * multiple + np.select([fiber, has_internet], [50.0, 25.0], 0.0)
    has: dict[str, np.ndarray] = {}
    for service, (share, price) in ADD_ONS.items():
        has[service] = has_internet & (rng.random(n) < share + 0.2 * (loyalty - 0.45))
        charges += price * has[service]
        frame[service] = np.where(has_internet, _yes(has[service]), "No internet service")
    charges = np.clip(charges + rng.normal(0, 1.5, n), 18.25, None)

    paperless = rng.random(n) < np.where(fiber, 0.75, 0.5)
    payment = np.where(
        rng.random(n) < np.where(month_to_month, 0.48, 0.17),
        PAYMENT_METHODS[0],
        rng.choice(PAYMENT_METHODS[1:], n, p=[0.35, 0.33, 0.32]),
    )
    logit = (
        -2.55
        + np.select([month_to_month, ~two_year], [1.6, 0.5], 0.0)
        - 0.035 * tenure
        + 0.9 * fiber
        - 0.3 * ~has_internet
        + 0.5 * (payment == PAYMENT_METHODS[0])
        + 0.4 * (has_internet & ~has["OnlineSecurity"])
        + 0.4 * (has_internet & ~has["TechSupport"])
        + 0.3 * senior
        + 0.3 * paperless
        - 0.2 * partner
        - 0.2 * dependents
        + 0.015 * (charges - 65.0)
    )
    if drifted:
        rise = np.where(two_year, 0.0, 0.1 + 0.3 * loyalty)
        charges = charges * (1.0 + rise)
        logit = logit + 10.0 * rise
    churn = rng.random(n) < _sigmoid(logit)

    charges = np.round(charges, 2)
    total = np.round(charges * tenure * rng.uniform(0.95, 1.05, n), 2)
    frame.update(
        {
            "Contract": contract,
            "PaperlessBilling": _yes(paperless),
            "PaymentMethod": payment,
            "MonthlyCharges": charges,
            # blank in the IBM file for customers in their first month: no bill yet
            "TotalCharges": np.where(tenure == 0, np.nan, total),
            "Churn": _yes(churn),
            "timestamp": timestamp,
        }
    )
    return pd.DataFrame(frame)


def generate_days(
    first_day: int, days: int, rows: int, *, seed: int = 42, drift_from: int | None = None
) -> pd.DataFrame:
    """The customers of ``days`` days from ``first_day``; days from ``drift_from`` are drifted."""
    return pd.concat(
        [
            generate_day(day, rows, seed=seed, drifted=drift_from is not None and day >= drift_from)
            for day in range(first_day, first_day + days)
        ],
        ignore_index=True,
    )
