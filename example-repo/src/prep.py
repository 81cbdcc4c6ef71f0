"""Prepare the training data: drop incomplete rows and write a clean CSV."""

import argparse
import csv
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--raw", required=True)
    parser.add_argument("--clean", required=True)
    args = parser.parse_args()
    out = Path(args.clean)
    out.mkdir(parents=True, exist_ok=True)
    with open(args.raw, newline="") as src, open(out / "train.csv", "w", newline="") as dst:
        reader = csv.reader(src)
        writer = csv.writer(dst)
        header = next(reader)
        writer.writerow(header)
        kept = 0
        for row in reader:
            if all(cell.strip() for cell in row):
                writer.writerow(row)
                kept += 1
    print(f"kept {kept} rows")


if __name__ == "__main__":
    main()
