"""Peer: the plain `requests` + `iter_lines()` loop from Ollama's docs.

Usage: python peer_requests.py URL BODY_JSON
"""

import json
import sys

import requests

url, body = sys.argv[1], json.loads(sys.argv[2])
for line in requests.post(url + "/api/generate", json=body, stream=True).iter_lines():
    if line:
        print(json.loads(line)["response"], end="", flush=True)
