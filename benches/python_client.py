#!/usr/bin/env python3
"""The Python-client baseline for benches/export_import_vs_python.sh.

  python_client.py export PORT COLLECTION      page through `get` 5000 at a time (what
                                               people do today); prints rows/s
  python_client.py import PORT COLLECTION FILE add a vecdrill export file's records with
                                               `add` in batches of 5000 (file read first,
                                               not timed); prints rows/s
"""
import base64
import json
import struct
import sys
import time

import chromadb

PAGE = 5000


def export(port, name):
    client = chromadb.HttpClient(host="127.0.0.1", port=port)
    collection = client.get_collection(name)
    started = time.perf_counter()
    rows = 0
    offset = 0
    while True:
        page = collection.get(include=["embeddings", "documents", "metadatas"], limit=PAGE, offset=offset)
        n = len(page["ids"])
        rows += n
        offset += n
        if n < PAGE:
            break
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": rows, "seconds": seconds, "rows_per_second": rows / seconds}))


def load(path):
    ids, embeddings, documents, metadatas = [], [], [], []
    for line in open(path):
        record = json.loads(line)
        if record["type"] != "record":
            continue
        raw = base64.b64decode(record["embedding"])
        ids.append(record["id"])
        embeddings.append(list(struct.unpack(f"<{len(raw) // 4}f", raw)))
        documents.append(record.get("document"))
        metadatas.append(record.get("metadata"))
    return ids, embeddings, documents, metadatas


def import_(port, name, path):
    ids, embeddings, documents, metadatas = load(path)
    client = chromadb.HttpClient(host="127.0.0.1", port=port)
    collection = client.get_or_create_collection(name)
    started = time.perf_counter()
    for at in range(0, len(ids), PAGE):
        end = at + PAGE
        collection.add(ids=ids[at:end], embeddings=embeddings[at:end],
                       documents=documents[at:end], metadatas=metadatas[at:end])
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": len(ids), "seconds": seconds, "rows_per_second": len(ids) / seconds}))


if __name__ == "__main__":
    mode, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if mode == "export":
        export(port, name)
    else:
        import_(port, name, sys.argv[4])
