"""Run girth on a RESPONSES.csv, for benchmarks/engine_benchmark.py (girth's own venv).

    python girth_runner.py calibrate RESPONSES.csv --model {2pl,3pl} --out PARAMS.csv
    python girth_runner.py eap RESPONSES.csv --params PARAMS.csv

Prints one JSON line with the seconds spent in girth's function itself.
girth 0.8 has no CSV reader; numpy.loadtxt (C parser) reads the file.
"""
import argparse
import json
import time

import girth
import numpy as np


def read(path):
    with open(path) as f:
        header = f.readline().strip().split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1, usecols=range(1, len(header)), dtype=np.int32)
    return header[1:], data


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["calibrate", "eap"])
    parser.add_argument("responses")
    parser.add_argument("--model", default="2pl")
    parser.add_argument("--out")
    parser.add_argument("--params")
    args = parser.parse_args()
    item_ids, data = read(args.responses)
    dataset = np.ascontiguousarray(data.T)  # girth wants items x examinees
    if args.command == "calibrate":
        started = time.perf_counter()
        if args.model == "2pl":
            result = girth.twopl_mml(dataset)
            c = np.zeros(len(item_ids))
        else:
            result = girth.threepl_mml(dataset)
            c = result["Guessing"]
        seconds = time.perf_counter() - started
        with open(args.out, "w") as f:
            f.write("item_id,a,b,c\n")
            for row in zip(item_ids, result["Discrimination"], result["Difficulty"], c):
                f.write("%s,%.6f,%.6f,%.6f\n" % row)
    else:
        params = np.loadtxt(args.params, delimiter=",", skiprows=1, usecols=(1, 2, 3))
        started = time.perf_counter()
        girth.ability_3pl_eap(dataset, params[:, 1], params[:, 0], params[:, 2])
        seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    main()
