#!/usr/bin/env python3
"""Build the OCI image fixtures that berth's tests run against.

berth's tests must not depend on a registry or on the network, so this script
builds small images locally, as OCI image layout tarballs ("oci-archive"):

  busybox     busybox.oci.tar: one gzip layer holding the static busybox from
              the busybox-static package, a symlink per applet and a minimal
              /etc. Good enough to run `sh`.

  layered     layered.oci.tar: four layers (gzip, zstd, plain tar, gzip) that
              exercise the layer unpacker: hard links, symlinks, devices, a
              FIFO, ownership, setuid/sticky bits, xattrs, non-ASCII and long
              names (PAX and GNU), whiteouts and an opaque directory.
              layered.expect.json describes what unpacking each layer must
              produce, and what the merged root filesystem must look like.

  bench       bench-300m.oci.tar: six gzip layers of about 50 MB each, made
              of host files from /usr topped up with incompressible bytes. It
              measures pull/unpack throughput; it is only reproducible on the
              same host.

Everything in busybox and layered is byte-for-byte reproducible for a given
busybox-static and zstd version: fixed timestamps, numeric owners, sorted
entries, gzip without name or time, single-threaded zstd, canonical JSON.
The manifest digests are therefore stable and tests may compare them.

Only the Python standard library is used, plus the `zstd` command line tool.

Usage: mkimage.py {busybox,layered,bench} --out DIR [--busybox PATH]

Outputs are written to a temporary directory inside DIR and renamed into
place. The manifest digest is printed on stdout and stored in NAME.digest.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

EPOCH = 1704067200  # 2024-01-01T00:00:00Z, the mtime of every fixture entry
CREATED = "2024-01-01T00:00:00Z"
TOP_MTIME = 1580608922  # 2020-02-02T02:02:02Z, the mtime of data/top.txt
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REF_NAME = "latest"

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "none": "application/vnd.oci.image.layer.v1.tar",
}
GZIP_LEVEL = 6
ZSTD_CMD = ["zstd", "-3", "--single-thread", "-q", "-c"]

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"


# --------------------------------------------------------------------------
# Filesystem entries: one description feeds both the tar and the expectations

@dataclass
class Entry:
    """One object in a layer, as written to the tar."""

    path: str  # relative, no leading or trailing slash
    kind: str  # file, dir, symlink, hardlink, chardev, blockdev, fifo
    mode: int
    uid: int = 0
    gid: int = 0
    mtime: int = EPOCH
    data: bytes = b""
    link: str = ""  # symlink target, or hard link source path
    major: int = 0
    minor: int = 0
    xattrs: dict = field(default_factory=dict)


def d(path, mode=0o755, **kw):
    return Entry(path, "dir", mode, **kw)


def f(path, data, mode=0o644, **kw):
    return Entry(path, "file", mode, data=data, **kw)


def sym(path, target):
    return Entry(path, "symlink", 0o777, link=target)


def hard(path, target):
    return Entry(path, "hardlink", 0o644, link=target)


def chardev(path, major, minor, mode=0o666):
    return Entry(path, "chardev", mode, major=major, minor=minor)


def blockdev(path, major, minor, mode=0o660):
    return Entry(path, "blockdev", mode, major=major, minor=minor)


def fifo(path, mode=0o644):
    return Entry(path, "fifo", mode)


TAR_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "chardev": tarfile.CHRTYPE,
    "blockdev": tarfile.BLKTYPE,
    "fifo": tarfile.FIFOTYPE,
}


def tar_order(entries):
    """Sorted by path (parents first); hard links last, after their targets."""
    return sorted(entries, key=lambda e: (e.kind == "hardlink", e.path))


def to_tarinfo(e):
    ti = tarfile.TarInfo(e.path)
    ti.type = TAR_TYPES[e.kind]
    ti.mode = e.mode
    ti.uid, ti.gid = e.uid, e.gid
    ti.uname = ti.gname = ""
    ti.mtime = e.mtime
    ti.size = len(e.data) if e.kind == "file" else 0
    ti.linkname = e.link
    ti.devmajor, ti.devminor = e.major, e.minor
    ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in sorted(e.xattrs.items())}
    return ti


def add_entry(tar, e):
    data = io.BytesIO(e.data) if e.kind == "file" else None
    tar.addfile(to_tarinfo(e), data)


# --------------------------------------------------------------------------
# Blobs and layers

class HashingWriter:
    """A write-only file object that hashes and counts what passes through."""

    def __init__(self, sink=None):
        self.sink = sink
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.sha.update(data)
        self.size += len(data)
        if self.sink is not None:
            self.sink.write(data)
        return len(data)

    def tell(self):
        return self.size

    def flush(self):
        pass

    @property
    def digest(self):
        return "sha256:" + self.sha.hexdigest()


def sha256_file(path):
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            sha.update(chunk)
    return "sha256:" + sha.hexdigest()


def blob_path(blob_dir, digest):
    return os.path.join(blob_dir, digest.split(":", 1)[1])


def put_blob(blob_dir, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(blob_path(blob_dir, digest), "wb") as fh:
        fh.write(data)
    return digest


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


@dataclass
class Layer:
    media_type: str
    digest: str
    size: int
    diff_id: str

    def descriptor(self):
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


class LayerWriter:
    """Streams a tar through a compressor into a blob, hashing both sides."""

    def __init__(self, blob_dir, compression, tar_format, tag=""):
        self.blob_dir = blob_dir
        self.compression = compression
        self.tmp = os.path.join(blob_dir, f".layer-{os.getpid()}-{tag}")
        self.file = open(self.tmp, "wb")
        self.blob = HashingWriter(self.file)
        self.proc = None
        if compression == "gzip":
            self.codec = gzip.GzipFile(filename="", mode="wb", fileobj=self.blob,
                                       compresslevel=GZIP_LEVEL, mtime=0)
        elif compression == "zstd":
            self.proc = subprocess.Popen(ZSTD_CMD, stdin=subprocess.PIPE,
                                         stdout=self.file, stderr=subprocess.PIPE)
            self.codec = self.proc.stdin
        else:
            self.codec = self.blob
        self.raw = HashingWriter(self.codec)
        self.tar = tarfile.open(fileobj=self.raw, mode="w", format=tar_format)

    @property
    def compressed_size(self):
        """Bytes of blob written so far (gzip and plain tar only)."""
        return self.blob.size

    def finish(self):
        self.tar.close()
        if self.compression == "gzip":
            self.codec.close()
        elif self.compression == "zstd":
            self.finish_zstd()
        self.file.close()
        if self.compression == "zstd":
            digest, size = sha256_file(self.tmp), os.path.getsize(self.tmp)
        else:
            digest, size = self.blob.digest, self.blob.size
        os.replace(self.tmp, blob_path(self.blob_dir, digest))
        return Layer(MT_LAYER[self.compression], digest, size, self.raw.digest)

    def finish_zstd(self):
        """Waits for zstd; raises with its own message if it failed."""
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        err = self.proc.stderr.read().decode(errors="replace").strip()
        if self.proc.wait() != 0:
            status = f"exit status {self.proc.returncode}"
            raise RuntimeError(f"zstd failed: {err.splitlines()[-1] if err else status}")


def write_layer(blob_dir, entries, compression, tar_format=tarfile.PAX_FORMAT):
    writer = LayerWriter(blob_dir, compression, tar_format)
    try:
        for e in tar_order(entries):
            add_entry(writer.tar, e)
    except BrokenPipeError:
        writer.finish_zstd()  # only zstd writes to a pipe; report why it died
        raise
    return writer.finish()


# --------------------------------------------------------------------------
# Images

def image_config(layers, cmd, workdir, history):
    return {
        "created": CREATED,
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": [PATH_ENV], "Cmd": cmd, "WorkingDir": workdir},
        "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]},
        "history": [history_entry(*h) for h in history],
    }


def history_entry(created_by, empty_layer=False):
    entry = {"created": CREATED, "created_by": created_by}
    if empty_layer:
        entry["empty_layer"] = True
    return entry


def write_image(out_path, blob_dir, layers, cmd, workdir, history):
    """Writes config, manifest and index; returns the manifest descriptor."""
    config = canonical_json(image_config(layers, cmd, workdir, history))
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": put_blob(blob_dir, config),
                   "size": len(config)},
        "layers": [l.descriptor() for l in layers],
    })
    manifest_desc = {
        "mediaType": MT_MANIFEST,
        "digest": put_blob(blob_dir, manifest),
        "size": len(manifest),
        "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": {"org.opencontainers.image.ref.name": REF_NAME},
    }
    index = canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX,
                            "manifests": [manifest_desc]})
    write_oci_archive(out_path, blob_dir, index)
    return manifest_desc


def archive_info(name, kind, size=0):
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE if kind == "dir" else tarfile.REGTYPE
    ti.mode = 0o755 if kind == "dir" else 0o644
    ti.mtime = EPOCH
    ti.size = size
    return ti


def write_oci_archive(out_path, blob_dir, index):
    """An OCI image layout (oci-layout, index.json, blobs/sha256/*) as a tar."""
    layout = canonical_json({"imageLayoutVersion": "1.0.0"})
    blobs = sorted(n for n in os.listdir(blob_dir) if not n.startswith("."))
    with tarfile.open(out_path, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(archive_info("blobs", "dir"))
        tar.addfile(archive_info("blobs/sha256", "dir"))
        for name in blobs:
            path = os.path.join(blob_dir, name)
            with open(path, "rb") as fh:
                tar.addfile(archive_info("blobs/sha256/" + name, "file",
                                         os.path.getsize(path)), fh)
        tar.addfile(archive_info("index.json", "file", len(index)), io.BytesIO(index))
        tar.addfile(archive_info("oci-layout", "file", len(layout)), io.BytesIO(layout))


# --------------------------------------------------------------------------
# Layer contents

def busybox_applets(busybox):
    out = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True)
    return sorted(set(out.stdout.split()) - {"busybox"})


def busybox_entries(busybox):
    """A minimal root filesystem around the static busybox."""
    with open(busybox, "rb") as fh:
        binary = fh.read()
    dirs = [d(p) for p in ("bin", "dev", "etc", "home", "proc", "sys", "usr",
                           "usr/bin", "var", "var/www")]
    dirs += [d("root", 0o700), d("tmp", 0o1777)]
    files = [
        f("bin/busybox", binary, 0o755),
        f("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                        b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
        f("etc/group", b"root:x:0:\nnogroup:x:65534:\n"),
        f("var/www/index.html", b"hello from berth\n"),
    ]
    links = [sym("bin/" + a, "busybox") for a in busybox_applets(busybox)]
    return dirs + files + links


LONG_DIR = "data/deep/a-directory-name-that-helps-push-the-full-path-well-past-one-hundred-bytes"
LONG_FILE = LONG_DIR + "/and-a-file-name-long-enough-that-ustar-cannot-hold-it.txt"
GNU_LONG_FILE = "data/gnu-long-name-" + "x" * 90 + ".txt"
RANDOM_BYTES = hashlib.shake_256(b"berth fixture data/random.bin").digest(1 << 20)


def special_entries():
    """Layer 2: every kind of object the unpacker has to recreate."""
    return [
        d("data"), d("data/old"), d("data/deep"), d(LONG_DIR), d("dev"),
        d("data/sticky", 0o1777),
        f("data/keep.txt", b"keep me\n"),
        hard("data/hard.txt", "data/keep.txt"),
        f("data/gone.txt", b"deleted by a whiteout in the next layer\n"),
        f("data/old/a.txt", b"a\n"),
        f("data/old/b.txt", b"b\n"),
        sym("data/link", "keep.txt"),
        sym("data/abs", "/etc/passwd"),
        sym("data/long-link", LONG_FILE[len("data/"):]),
        chardev("dev/null-copy", 1, 3),
        blockdev("dev/loop-copy", 7, 0),
        fifo("data/fifo"),
        f("data/owned.txt", b"owned by 1000:1000\n", 0o640, uid=1000, gid=1000),
        f("data/setuid", b"#!/bin/sh\necho setuid\n", 0o4755),
        f("data/xattr.txt", b"has a user xattr\n", xattrs={"user.berth.test": "hello"}),
        f("data/\u00fcn\u00efcode.txt", "non-ASCII name \u00fcn\u00efcode\n".encode()),
        f(LONG_FILE, b"long path\n"),
        f("data/empty", b""),
        f("data/random.bin", RANDOM_BYTES),
    ]


def whiteout_entries():
    """Layer 3 (GNU tar format): whiteouts, an opaque directory, new files."""
    return [
        d("data"), d("data/old"), d("etc"),
        f("data/" + WHITEOUT + "gone.txt", b""),
        f("data/old/" + OPAQUE, b""),
        f("data/old/c.txt", b"c\n"),
        f(GNU_LONG_FILE, b"GNU long name\n"),
        f("etc/motd", b"welcome to berth\n"),
    ]


def top_entries():
    """Layer 4: a single file; its parent directory is not in the tar."""
    return [f("data/top.txt", b"top layer\n", mtime=TOP_MTIME)]


# --------------------------------------------------------------------------
# Expectations (layered.expect.json)

CONVENTIONS = [
    "paths are relative to the layer (or rootfs) root: no leading slash",
    "layers maps each diff_id to the objects found after unpacking that layer alone "
    "into an empty directory; the list is exhaustive (the root itself is not listed)",
    "every entry has every field; null means not applicable or not checked",
    "mode: permission bits incl. setuid/setgid/sticky, as an octal string",
    "type: file, dir, symlink, hardlink, chardev, blockdev, fifo",
    "hardlink: the same inode as the path in link; its other fields describe that inode",
    "nlink: link count of regular files (2 for data/keep.txt and data/hard.txt)",
    "link: symlink target as stored, or the path a hard link points to",
    "major/minor: device numbers of chardev and blockdev entries",
    "a '.wh.NAME' whiteout becomes NAME, a chardev 0:0 with whiteout=true",
    "a '.wh..wh..opq' marker becomes xattr trusted.overlay.opaque=y on its directory "
    "and is not itself an entry",
    "directories not present in the tar but needed as parents have mtime null",
    "merged: the overlay view of all layers for selected paths; trusted.overlay.* "
    "xattrs are hidden, directory mtimes are not checked, and children lists the "
    "complete contents of a directory; absent lists paths that must not exist",
]

MERGED_PRESENT = [
    "bin/busybox", "bin/sh", "etc/passwd", "etc/motd", "var/www/index.html", "tmp",
    "dev", "dev/null-copy", "dev/loop-copy",
    "data", "data/keep.txt", "data/hard.txt", "data/link", "data/abs", "data/fifo",
    "data/owned.txt", "data/setuid", "data/sticky", "data/xattr.txt",
    "data/\u00fcn\u00efcode.txt", "data/random.bin", "data/empty", "data/long-link",
    LONG_FILE, GNU_LONG_FILE, "data/old", "data/old/c.txt", "data/top.txt",
]
MERGED_ABSENT = ["data/gone.txt", "data/old/a.txt", "data/old/b.txt"]


def octal(mode):
    return None if mode is None else "0" + format(mode, "o")


def blank_record(path, kind):
    return {"path": path, "type": kind, "mode": None, "uid": 0, "gid": 0,
            "mtime": None, "size": None, "sha256": None, "nlink": None,
            "link": None, "major": None, "minor": None, "xattrs": {},
            "whiteout": False, "children": None}


def entry_record(e):
    r = blank_record(e.path, e.kind)
    r.update(mode=octal(e.mode), uid=e.uid, gid=e.gid, mtime=e.mtime,
             xattrs=dict(e.xattrs))
    if e.kind == "file":
        r.update(size=len(e.data), sha256=hashlib.sha256(e.data).hexdigest(), nlink=1)
    if e.kind in ("symlink", "hardlink"):
        r["link"] = e.link
    if e.kind in ("chardev", "blockdev"):
        r.update(major=e.major, minor=e.minor)
    return r


def whiteout_record(path):
    r = blank_record(path, "chardev")
    r.update(major=0, minor=0, whiteout=True)
    return r


def parent_of(path):
    return path.rpartition("/")[0]


def ancestors(path):
    parent = parent_of(path)
    while parent:
        yield parent
        parent = parent_of(parent)


def add_implicit_parents(records):
    for path in list(records):
        for parent in ancestors(path):
            if parent not in records:
                records[parent] = blank_record(parent, "dir")
                records[parent]["mode"] = octal(0o755)


def resolve_hardlinks(records):
    """Hard links share their target's inode: copy its attributes, count links."""
    for r in records.values():
        if r["type"] == "hardlink":
            records[r["link"]]["nlink"] += 1
    for r in records.values():
        if r["type"] == "hardlink":
            inode = records[r["link"]]
            for key in ("mode", "uid", "gid", "mtime", "size", "sha256", "nlink", "xattrs"):
                r[key] = inode[key]


def expected_layer(entries):
    """What unpacking one layer into an empty directory must produce."""
    records, opaque = {}, []
    for e in entries:
        parent, _, name = e.path.rpartition("/")
        if name == OPAQUE:
            opaque.append(parent)
        elif name.startswith(WHITEOUT):
            path = (parent + "/" if parent else "") + name[len(WHITEOUT):]
            records[path] = whiteout_record(path)
        else:
            records[e.path] = entry_record(e)
    add_implicit_parents(records)
    for path in opaque:
        records[path]["xattrs"][OPAQUE_XATTR] = "y"
    resolve_hardlinks(records)
    return [records[p] for p in sorted(records)]


def remove_tree(tree, path, keep_root=False):
    prefix = path + "/"
    for p in [p for p in tree if p.startswith(prefix) or (p == path and not keep_root)]:
        del tree[p]


def visible(record):
    """A layer record as seen through the merged (overlay) view."""
    r = dict(record)
    r["xattrs"] = {k: v for k, v in r["xattrs"].items() if not k.startswith("trusted.overlay.")}
    if r["type"] == "dir":
        r["mtime"] = None
    return r


def apply_layer(tree, records):
    for r in records:
        if r["whiteout"]:
            remove_tree(tree, r["path"])
        elif OPAQUE_XATTR in r["xattrs"]:
            remove_tree(tree, r["path"], keep_root=True)
    for r in records:
        if r["whiteout"]:
            continue
        old = tree.get(r["path"])
        if old is not None and (old["type"] == "dir") != (r["type"] == "dir"):
            remove_tree(tree, r["path"])
        tree[r["path"]] = visible(r)


def merged_view(layer_records):
    tree = {}
    for records in layer_records:
        apply_layer(tree, records)
    for path, r in tree.items():
        if r["type"] == "dir":
            r["children"] = sorted(p.rpartition("/")[2] for p in tree if parent_of(p) == path)
    missing = [p for p in MERGED_PRESENT if p not in tree]
    leaked = [p for p in MERGED_ABSENT if p in tree]
    if missing or leaked:
        raise RuntimeError(f"fixture definition is inconsistent: {missing or leaked}")
    return {"present": [tree[p] for p in sorted(MERGED_PRESENT)], "absent": MERGED_ABSENT}


def expectations(layer_entries, layers, manifest_digest):
    per_layer = [expected_layer(entries) for entries in layer_entries]
    doc = {
        "format": "berth-layer-expectations/1",
        "image": "layered.oci.tar",
        "ref": REF_NAME,
        "manifest_digest": manifest_digest,
        "conventions": CONVENTIONS,
        "layers": {
            layer.diff_id: {"index": i, "digest": layer.digest,
                            "media_type": layer.media_type, "entries": records}
            for i, (layer, records) in enumerate(zip(layers, per_layer))
        },
        "merged": merged_view(per_layer),
    }
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


# --------------------------------------------------------------------------
# The bench image: host files, about 50 MB of gzip per layer

BENCH_SOURCES = ("/usr/bin", "/usr/share", "/usr/lib")
BENCH_LAYERS_PER_SOURCE = 2
BENCH_LAYER_BYTES = 50 * 10**6  # compressed size of each layer
BENCH_HOST_BYTES = 40 * 10**6  # compressed host content per layer; the rest is padding
BENCH_CHUNK_RAW = 200 * 10**6  # uncompressed host bytes set aside for each layer


def walk_host(root):
    """(path, lstat) of regular files and symlinks under root, in sorted order."""
    for top, dirs, files in os.walk(root, onerror=lambda e: None):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(top, name)
            try:
                st = os.lstat(path)
                path.encode("utf-8")
            except (OSError, UnicodeEncodeError):
                continue
            if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                yield path, st


def host_chunks(root, count):
    """Splits root's files into `count` runs of about BENCH_CHUNK_RAW bytes."""
    chunks = [[] for _ in range(count)]
    total = 0
    for path, st in walk_host(root):
        i = total // BENCH_CHUNK_RAW
        if i >= count:
            break
        chunks[i].append(path)
        total += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return chunks


def host_entry(path):
    """An Entry for a host file or symlink, owned by root, with a fixed mtime."""
    st = os.lstat(path)
    rel = path.lstrip("/")
    if stat.S_ISLNK(st.st_mode):
        return sym(rel, os.readlink(path))
    with open(path, "rb") as fh:
        return f(rel, fh.read(), stat.S_IMODE(st.st_mode))


def add_with_parents(tar, e, seen_dirs):
    for parent in reversed(list(ancestors(e.path))):
        if parent not in seen_dirs:
            seen_dirs.add(parent)
            add_entry(tar, d(parent))
    add_entry(tar, e)


def build_bench_layer(job):
    index, paths, blob_dir = job
    writer = LayerWriter(blob_dir, "gzip", tarfile.PAX_FORMAT, tag=str(index))
    seen_dirs = set()
    for path in paths:
        room = BENCH_HOST_BYTES - writer.compressed_size
        if room <= 0:
            break
        try:
            if os.lstat(path).st_size > room:
                continue  # even compressed, it could overshoot the layer size
            e = host_entry(path)
        except OSError:
            continue
        add_with_parents(writer.tar, e, seen_dirs)
    pad = max(BENCH_LAYER_BYTES - writer.compressed_size, 0)
    noise = hashlib.shake_256(f"berth bench layer {index}".encode()).digest(pad)
    add_with_parents(writer.tar, f(f"bench/pad-{index}.bin", noise), seen_dirs)
    return writer.finish()


# --------------------------------------------------------------------------
# Builders: each returns (manifest digest, {output name: temporary path})

def build_busybox(work, blob_dir, args):
    layer = write_layer(blob_dir, busybox_entries(args.busybox), "gzip")
    out = os.path.join(work, "busybox.oci.tar")
    manifest = write_image(out, blob_dir, [layer], ["sh"], "/", [
        ("berth fixtures: busybox-static, applet symlinks, minimal /etc",),
        ('berth fixtures: CMD ["sh"]', True),
    ])
    return manifest["digest"], {"busybox.oci.tar": out}


def build_layered(work, blob_dir, args):
    layer_entries = [busybox_entries(args.busybox), special_entries(),
                     whiteout_entries(), top_entries()]
    layers = [
        write_layer(blob_dir, layer_entries[0], "gzip"),
        write_layer(blob_dir, layer_entries[1], "zstd"),
        write_layer(blob_dir, layer_entries[2], "none", tarfile.GNU_FORMAT),
        write_layer(blob_dir, layer_entries[3], "gzip"),
    ]
    out = os.path.join(work, "layered.oci.tar")
    manifest = write_image(out, blob_dir, layers, ["sh"], "/data", [
        ("berth fixtures: busybox-static, applet symlinks, minimal /etc",),
        ("berth fixtures: links, devices, fifo, owners, modes, xattrs, long names",),
        ("berth fixtures: whiteout, opaque directory, GNU long name",),
        ("berth fixtures: data/top.txt with its own mtime",),
        ('berth fixtures: CMD ["sh"]', True),
    ])
    expect = os.path.join(work, "layered.expect.json")
    with open(expect, "wb") as fh:
        fh.write(expectations(layer_entries, layers, manifest["digest"]))
    return manifest["digest"], {"layered.expect.json": expect, "layered.oci.tar": out}


def build_bench(work, blob_dir, args):
    jobs = []
    for source in BENCH_SOURCES:
        for paths in host_chunks(source, BENCH_LAYERS_PER_SOURCE):
            jobs.append((len(jobs), paths, blob_dir))
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        layers = list(pool.map(build_bench_layer, jobs))
    out = os.path.join(work, "bench-300m.oci.tar")
    history = [(f"berth fixtures: bench layer {i}",) for i in range(len(layers))]
    manifest = write_image(out, blob_dir, layers, ["true"], "/", history)
    return manifest["digest"], {"bench-300m.oci.tar": out}


BUILDERS = {
    "busybox": ("busybox", build_busybox),
    "layered": ("layered", build_layered),
    "bench": ("bench-300m", build_bench),
}


def build(kind, args):
    name, builder = BUILDERS[kind]
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out, prefix=".tmp-") as work:
        blob_dir = os.path.join(work, "blobs")
        os.mkdir(blob_dir)
        digest, outputs = builder(work, blob_dir, args)
        digest_file = os.path.join(work, name + ".digest")
        with open(digest_file, "w") as fh:
            fh.write(digest + "\n")
        outputs[name + ".digest"] = digest_file
        for out_name, path in outputs.items():
            os.replace(path, os.path.join(args.out, out_name))
    return digest


def main():
    parser = argparse.ArgumentParser(description="Build berth's OCI image fixtures.")
    parser.add_argument("kind", choices=sorted(BUILDERS))
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--busybox", default="/bin/busybox", help="static busybox binary")
    args = parser.parse_args()
    try:
        print(build(args.kind, args))
    except Exception as e:  # one line for the caller, not a traceback
        print(f"mkimage {args.kind}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
