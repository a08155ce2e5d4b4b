"""Peer: the official `ollama` Python client's streaming loop.

Usage: python peer_ollama.py URL BODY_JSON
"""

import json
import sys

import ollama

url, body = sys.argv[1], json.loads(sys.argv[2])
client = ollama.Client(host=url)
for part in client.generate(
    model=body["model"], prompt=body["prompt"], stream=True, options=body.get("options")
):
    print(part["response"], end="", flush=True)
