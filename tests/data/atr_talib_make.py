"""Regenerate tests/data/atr_talib_expected.json: ATR computed by TA-Lib itself.

Writes TA-Lib's ATR (via its Python package, whose PyPI wheels bundle the C library) for
two input series, so that tests/scale.rs can check our Wilder ATR with seed = "talib"
against TA-Lib to floating-point round-off without needing Python at test time:

* "regtest": the 252 reference daily bars of TA-Lib's own regression tests
  (tests/data/atr_talib_regtest_hlc.csv, transcribed from TA-Lib/ta-lib
  src/tools/ta_regtest/test_data.c);
* "synthetic": a seeded random walk of OHLC bars with a close-only stretch
  (open = high = low = close), a flat stretch and a large price level, to exercise
  gaps, zero ranges and magnitude.

Usage (from the repository root):
    python -m venv /tmp/talib && /tmp/talib/bin/pip install TA-Lib
    /tmp/talib/bin/python tests/data/atr_talib_make.py
NaN outputs (TA-Lib's lookback) are written as null.
"""

import json
import pathlib

import numpy as np
import talib

HERE = pathlib.Path(__file__).resolve().parent
PERIODS = [1, 2, 5, 14, 30]


def regtest_series():
    rows = [
        line.split(",")
        for line in (HERE / "atr_talib_regtest_hlc.csv").read_text().splitlines()
        if line and not line.startswith("#") and not line.startswith("high")
    ]
    cols = np.array(rows, dtype=float).T
    return cols[0].copy(), cols[1].copy(), cols[2].copy()


def synthetic_series(n=600, seed=20240611):
    rng = np.random.default_rng(seed)
    close = np.empty(n)
    high = np.empty(n)
    low = np.empty(n)
    price = 50.0
    for t in range(n):
        if 400 <= t < 450:
            level = 1.0e4  # large price level, small relative moves
            price = level + rng.normal(0.0, 3.0) if t == 400 else price + rng.normal(0.0, 3.0)
        elif t == 450:
            price = 50.0
        else:
            price = price + rng.normal(0.0, 1.0)
        open_gap = rng.normal(0.0, 0.8)  # gaps make |H - C_prev| or |L - C_prev| the true range
        if 200 <= t < 260:  # close-only stream: open = high = low = close
            high[t] = low[t] = close[t] = price
        elif 300 <= t < 320:  # perfectly flat bars
            high[t] = low[t] = close[t] = 42.0
        else:
            c = price
            o = price + open_gap
            high[t] = max(o, c) + abs(rng.normal(0.0, 0.5))
            low[t] = min(o, c) - abs(rng.normal(0.0, 0.5))
            close[t] = c
    return high, low, close


def atr_table(high, low, close):
    out = {}
    for p in PERIODS:
        values = talib.ATR(high, low, close, timeperiod=p)
        out[str(p)] = [None if np.isnan(v) else float(v) for v in values]
    return out


def main():
    series = []
    for name, (h, l, c) in [("regtest", regtest_series()), ("synthetic", synthetic_series())]:
        series.append(
            {
                "name": name,
                "high": [float(x) for x in h],
                "low": [float(x) for x in l],
                "close": [float(x) for x in c],
                "atr": atr_table(h, l, c),
            }
        )
    doc = {
        "generator": "tests/data/atr_talib_make.py",
        "talib_python": talib.__version__,
        "talib_c": talib.__ta_version__.decode() if isinstance(talib.__ta_version__, bytes) else str(talib.__ta_version__),
        "series": series,
    }
    (HERE / "atr_talib_expected.json").write_text(json.dumps(doc, indent=None) + "\n")


if __name__ == "__main__":
    main()
