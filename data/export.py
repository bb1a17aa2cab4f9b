"""Writes the small real data sets gradstep's CLI and firmware train on, from the copies
scikit-learn ships (so no network access is needed): `digits.csv` and `diabetes.csv`.

    pip install scikit-learn==1.9.1 && python data/export.py

See README.md in this directory for the origin and license of each set.
"""

import os

import sklearn
from sklearn import datasets

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    digits = datasets.load_digits()
    with open(os.path.join(HERE, "digits.csv"), "w") as f:
        f.write("label," + ",".join(f"p{i}" for i in range(64)) + "\n")
        for label, row in zip(digits.target, digits.data):
            f.write(f"{int(label)}," + ",".join(str(int(v)) for v in row) + "\n")

    # The unscaled diabetes data: 10 baseline variables and the disease progression
    # one year later.
    diabetes = datasets.load_diabetes(scaled=False)
    with open(os.path.join(HERE, "diabetes.csv"), "w") as f:
        f.write(",".join(diabetes.feature_names) + ",target\n")
        for row, y in zip(diabetes.data, diabetes.target):
            f.write(",".join(repr(float(v)) for v in row) + f",{float(y)!r}\n")
    print(f"scikit-learn {sklearn.__version__}: digits {digits.data.shape}, "
          f"diabetes {diabetes.data.shape}")


if __name__ == "__main__":
    main()
