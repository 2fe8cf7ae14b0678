"""Read Earth Engine expression graphs in tests: inline references, find calls and constants."""

from __future__ import annotations

from typing import Any

import ee


def tree(obj: ee.ComputedObject) -> Any:
    """The graph as nested {"fn": name, "args": {...}} nodes, constants as plain values."""
    enc = ee.serializer.encode(obj, for_cloud_api=True)
    values, memo = enc["values"], {}

    def node(v: dict) -> Any:
        if "valueReference" in v:
            ref = v["valueReference"]
            if ref not in memo:
                memo[ref] = node(values[ref])
            return memo[ref]
        if "functionInvocationValue" in v:
            f = v["functionInvocationValue"]
            name = f.get("functionName") or "<call>"
            return {"fn": name, "args": {k: node(a) for k, a in f.get("arguments", {}).items()}}
        if "functionDefinitionValue" in v:
            body = v["functionDefinitionValue"]["body"]
            return {"fn": "<function>", "args": {"body": node({"valueReference": body})}}
        if "constantValue" in v:
            return v["constantValue"]
        if "arrayValue" in v:
            return [node(x) for x in v["arrayValue"]["values"]]
        if "dictionaryValue" in v:
            return {"fn": "<dict>", "args": {k: node(x) for k, x in v["dictionaryValue"]["values"].items()}}
        if "argumentReference" in v:
            return {"fn": "<arg>", "args": {}}
        return v

    return node(values[enc["result"]])


def nodes(t: Any) -> list[dict]:
    """Every call node once (the graph is a DAG)."""
    out, seen, stack = [], set(), [t]
    while stack:
        n = stack.pop()
        if isinstance(n, list):
            stack.extend(n)
        elif isinstance(n, dict) and "fn" in n:
            if id(n) in seen:
                continue
            seen.add(id(n))
            out.append(n)
            stack.extend(n["args"].values())
    return out


def calls(t: Any, fn: str) -> list[dict]:
    return [n for n in nodes(t) if n["fn"] == fn]


def constants(t: Any) -> list[Any]:
    out = []
    for n in nodes(t):
        for a in n["args"].values():
            if not (isinstance(a, dict) and "fn" in a):
                out.extend(a if isinstance(a, list) else [a])
    return out


def selects(n: Any) -> list[str]:
    """Band names selected directly under node ``n`` (following unary calls)."""
    out = []
    for s in calls(n, "Image.select"):
        b = s["args"].get("bandSelectors")
        out.extend(b if isinstance(b, list) else [b])
    return out


def bit_tests(t: Any) -> dict[str, set[int]]:
    """band -> set of masks used in ``band.bitwiseAnd(mask)`` (rightShift folded in as mask << shift)."""
    out: dict[str, set[int]] = {}
    for n in calls(t, "Image.bitwiseAnd"):
        src, mask = n["args"]["image1"], n["args"]["image2"]
        m = mask["args"]["value"] if isinstance(mask, dict) and mask.get("fn") == "Image.constant" else mask
        shift = 0
        if isinstance(src, dict) and src.get("fn") == "Image.rightShift":
            s = src["args"]["image2"]
            shift = s["args"]["value"] if isinstance(s, dict) else s
            src = src["args"]["image1"]
        for band in selects(src)[:1]:
            out.setdefault(band, set()).add(int(m) << int(shift))
    return out
