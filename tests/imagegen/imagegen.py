#!/usr/bin/env python3
"""Writes a small random container image as an OCI image layout directory.

The layout holds N gzip'd tar layers (each one random file), a valid linux/amd64 image config whose
rootfs.diff_ids are the sha256 of the uncompressed tars, one image manifest, and index.json naming it
by tag. Output is a pure function of the options: the same --seed gives the same digests.

    imagegen.py DIR [--layers N] [--size BYTES] [--seed S] [--tag T] [--format oci|docker]

Prints the manifest digest on stdout (with --json, a summary of every digest instead).
Importable: generate(...) returns the same summary as a dict.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import random
import sys
import tarfile

MEDIA_TYPES = {
    "oci": {
        "manifest": "application/vnd.oci.image.manifest.v1+json",
        "config": "application/vnd.oci.image.config.v1+json",
        "layer": "application/vnd.oci.image.layer.v1.tar+gzip",
    },
    "docker": {
        "manifest": "application/vnd.docker.distribution.manifest.v2+json",
        "config": "application/vnd.docker.container.image.v1+json",
        "layer": "application/vnd.docker.image.rootfs.diff.tar.gzip",
    },
}
EPOCH = "1970-01-01T00:00:00Z"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_layer_tar(name, payload):
    """An uncompressed tar with one regular file; fixed metadata so the bytes are reproducible."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        info.mode = 0o644
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


class Layout:
    """Writes content-addressed blobs under DIR/blobs/sha256."""

    def __init__(self, root):
        self.root = root
        os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)

    def put(self, data):
        digest = sha256(data)
        path = os.path.join(self.root, "blobs", "sha256", digest.split(":", 1)[1])
        with open(path, "wb") as f:
            f.write(data)
        return digest

    def write_json(self, name, obj):
        with open(os.path.join(self.root, name), "w") as f:
            json.dump(obj, f, indent=2)


def generate(out_dir, layers=2, size=1 << 20, seed=0, tag="latest", fmt="oci"):
    """Writes the layout; returns {manifest_digest, manifest_size, config_digest, layers, diff_ids, media_types}."""
    if fmt not in MEDIA_TYPES:
        raise ValueError("format must be one of " + ", ".join(MEDIA_TYPES))
    mt = MEDIA_TYPES[fmt]
    rng = random.Random(seed)
    layout = Layout(out_dir)

    layer_descs, diff_ids, history = [], [], []
    for i in range(layers):
        tar = make_layer_tar("data/layer%d.bin" % i, rng.randbytes(size))
        gz = gzip.compress(tar, compresslevel=6, mtime=0)
        layer_descs.append({"mediaType": mt["layer"], "digest": layout.put(gz), "size": len(gz)})
        diff_ids.append(sha256(tar))
        history.append({"created": EPOCH, "created_by": "imagegen layer %d seed %d" % (i, seed)})

    config = {
        "created": EPOCH,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/data/none"],
            "Labels": {"org.wharf.imagegen.seed": str(seed)},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    config_bytes = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
    config_digest = layout.put(config_bytes)

    manifest = {
        "schemaVersion": 2,
        "mediaType": mt["manifest"],
        "config": {"mediaType": mt["config"], "digest": config_digest, "size": len(config_bytes)},
        "layers": layer_descs,
    }
    manifest_bytes = json.dumps(manifest, indent=3).encode()
    manifest_digest = layout.put(manifest_bytes)

    layout.write_json("oci-layout", {"imageLayoutVersion": "1.0.0"})
    layout.write_json("index.json", {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": mt["manifest"],
            "digest": manifest_digest,
            "size": len(manifest_bytes),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    })
    return {
        "manifest_digest": manifest_digest,
        "manifest_size": len(manifest_bytes),
        "config_digest": config_digest,
        "layers": [d["digest"] for d in layer_descs],
        "diff_ids": diff_ids,
        "media_types": mt,
    }


def parse_size(text):
    """'1048576', '512K', '4M', '1G' (powers of 1024)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dir", help="output OCI layout directory (created if missing)")
    p.add_argument("--layers", type=int, default=2, help="number of layers (default 2)")
    p.add_argument("--size", type=parse_size, default=1 << 20,
                   help="bytes of random data per layer, e.g. 4096, 512K, 4M (default 1M)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--tag", default="latest", help="ref name recorded in index.json (default latest)")
    p.add_argument("--format", choices=sorted(MEDIA_TYPES), default="oci",
                   help="oci or docker (Docker schema2 media types)")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of the digest")
    args = p.parse_args(argv)
    if args.layers < 0 or args.size < 0:
        p.error("--layers and --size must not be negative")
    info = generate(args.dir, args.layers, args.size, args.seed, args.tag, args.format)
    print(json.dumps(info, indent=2) if args.json else info["manifest_digest"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
