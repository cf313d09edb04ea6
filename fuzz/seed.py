#!/usr/bin/env python3
"""Writes seed corpora for the fuzz targets from the recorded fixtures.

    fuzz/seed.py OUT_DIR        # writes OUT_DIR/{command,identifier,encoder}/<sha1>

Sources (all under fixtures/):
- transcripts/rails-*/*.json: client text frames ("op":"send"), binary/raw frames' payloads, and
  broadcast payloads ("op":"publish");
- json/*.jsonl: the Ruby oracle vectors (published payloads, encoded strings, identifiers
  and the frames echoing them).

command gets client frames, plus `message` commands wrapping broadcast payloads as data;
identifier gets every identifier seen (and the oracle's odd strings); encoder gets every
payload, frame and encoded string. Inputs over 4 KiB are skipped (bin/fuzz runs with
-max_len=4096). Files are named by content hash, as libFuzzer names its own.
"""

import base64
import glob
import hashlib
import json
import os
import sys

MAX_LEN = 4096
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fuzz", "seeds")
    seeds = {"command": set(), "identifier": set(), "encoder": set()}

    def add(target, data):
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogatepass")
        if 0 < len(data) <= MAX_LEN:
            seeds[target].add(data)

    def client_frame(text):
        add("command", text)
        add("encoder", text)
        try:
            frame = json.loads(text)
        except ValueError:
            return
        if isinstance(frame, dict):
            for key in ("identifier", "data"):
                if isinstance(frame.get(key), str):
                    add("identifier" if key == "identifier" else "encoder", frame[key])

    # One directory per Rails version (fixtures/transcripts/rails-<version>/).
    for path in sorted(glob.glob(os.path.join(ROOT, "fixtures", "transcripts", "*", "*.json"))):
        with open(path, encoding="utf-8") as f:
            transcript = json.load(f)
        for step in transcript.get("steps", []):
            op = step.get("op")
            if op == "send" and isinstance(step.get("text"), str):
                client_frame(step["text"])
            elif op == "send_binary" and "base64" in step:
                add("command", base64.b64decode(step["base64"]))
            elif op == "publish" and isinstance(step.get("payload"), str):
                add("encoder", step["payload"])
                wrap(add, step["payload"])
            elif op == "recv" and isinstance(step.get("text"), str):
                add("encoder", step["text"])

    for path in sorted(glob.glob(os.path.join(ROOT, "fixtures", "json", "*.jsonl"))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                vector = json.loads(line)
                for key in ("published", "frame_message", "encoded"):
                    if isinstance(vector.get(key), str):
                        add("encoder", vector[key])
                if isinstance(vector.get("published_hex"), str):
                    add("encoder", bytes.fromhex(vector["published_hex"]))
                if isinstance(vector.get("published"), str) and len(vector["published"]) < 200:
                    wrap(add, vector["published"])
                if isinstance(vector.get("s"), str):
                    add("identifier", vector["s"])
                if isinstance(vector.get("identifier"), str):
                    add("identifier", vector["identifier"])
                    add("command", json.dumps({"command": "subscribe", "identifier": vector["identifier"]}, separators=(",", ":")))
                for key in ("confirm_frame", "message_frame"):
                    if isinstance(vector.get(key), str):
                        add("encoder", vector[key])
                        add("command", vector[key])

    # Nesting at Ruby's limit and one past it.
    for depth in (100, 101):
        add("encoder", "[" * depth + "]" * depth)
        add("encoder", '{"a":' * depth + "1" + "}" * depth)
        ident = '{"channel":"ChatChannel","x":' + "[" * (depth - 1) + "]" * (depth - 1) + "}"
        add("identifier", ident)
        add("command", json.dumps({"command": "subscribe", "identifier": ident}))

    for target, items in seeds.items():
        directory = os.path.join(out, target)
        os.makedirs(directory, exist_ok=True)
        for data in items:
            with open(os.path.join(directory, hashlib.sha1(data).hexdigest()), "wb") as f:
                f.write(data)
        print(f"seed.py: {len(items)} seeds for {target} in {directory}")


def wrap(add, payload):
    """A `message` command carrying `payload` as its data string."""
    identifier = '{"channel":"ChatChannel","room":"1"}'
    add("command", json.dumps({"command": "message", "identifier": identifier, "data": payload}, separators=(",", ":")))


if __name__ == "__main__":
    main()
