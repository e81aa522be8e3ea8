#!/usr/bin/env python3
"""Extracts the OpenAPI v3 schemas of CustomResourceDefinitions into k8s/schemas/ (one JSON file
per group/version/kind), for `make k8s-check` to validate the Istio and cert-manager resources
offline. Run by hand when updating the CRDs (see k8s/schemas/README.md for the sources):

    tests/k8s/extract_schemas.py CRD.yaml [KIND ...]
"""
import json
import pathlib
import sys

import yaml

OUT = pathlib.Path(__file__).resolve().parents[2] / "k8s" / "schemas"


def main() -> None:
    path, kinds = sys.argv[1], set(sys.argv[2:])
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d and d.get("kind") == "CustomResourceDefinition"]
    for crd in docs:
        spec = crd["spec"]
        kind = spec["names"]["kind"]
        if kinds and kind not in kinds:
            continue
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            schema = version["schema"]["openAPIV3Schema"]
            name = f"{spec['group']}_{version['name']}_{kind}.json".lower()
            (OUT / name).write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n", encoding="utf-8")
            print("wrote", OUT / name)


if __name__ == "__main__":
    main()
