"""Turn apt's Debian index files into data/debian-descriptions.jsonl.gz (run by
make_debian_descriptions.sh, which fetches the indexes; stdlib only).

    python3 scripts/make_debian_descriptions.py LISTS_DIR OUT.jsonl.gz

LISTS_DIR holds apt's uncompressed lists for one suite: *_main_i18n_Translation-en,
*_main_binary-amd64_Packages and (optionally) *_main_source_Sources.

Each output line is a JSON object {package, source, split, text, summary}:
- summary: the first line of Description-en (the synopsis), stripped.
- text: the extended description. Debian policy 5.6.13: continuation lines start with one space;
  " ." alone is a blank line; lines starting with two or more spaces are shown verbatim. Here a
  paragraph of ordinary lines is joined with single spaces; each verbatim line is kept as its own
  line with its indentation less the one continuation space; paragraphs, verbatim lines and
  their neighbours are joined with "\n". Entries with an empty extended description are dropped.
- source: the `Source:` field of the package's entry in Packages (version in parentheses
  stripped); for packages that are not in the amd64 Packages index (other architectures only),
  the source whose `Binary:` list in Sources names them; else the package itself.
- split: from the source package, so that all binaries of one source (lib*, lib*-dev, *-doc)
  share it. Separate sources that describe one project (0ad / 0ad-data, bacula / bacula-doc,
  linux / linux-signed-*) often repeat the same opening paragraph, so sources are first joined
  into groups: two sources are in one group when any of their descriptions (after dedup) have
  the same first paragraph (transitively). The group's key is its smallest source name;
  h = first 8 bytes of sha256(key) as a big-endian integer, h % 100: 0-89 train,
  90-94 validation, 95-99 test. No first paragraph occurs in two splits.
Identical (text, summary) pairs are kept once: the one with the smallest (source, package).
Lines are sorted by (source, package); gzip with mtime 0 and no file name, so the same inputs
give the same bytes.
"""
import glob, gzip, hashlib, json, os, sys

lists, out = sys.argv[1], sys.argv[2]


def one(pattern):
    found = sorted(glob.glob(os.path.join(lists, pattern)))
    found = [f for f in found if "-updates_" not in f and "-security_" not in f]
    if len(found) != 1:
        sys.exit(f"make_debian_descriptions: expected one {pattern} in {lists}, found {found}")
    return found[0]


def stanzas(path):
    """Yield deb822 stanzas as lists of lines (continuation lines kept with their indent)."""
    block = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.strip() == "" and not line.startswith(" "):
                if block:
                    yield block
                block = []
            else:
                block.append(line)
    if block:
        yield block


def fields(block):
    d, key = {}, None
    for line in block:
        if line[:1] in (" ", "\t"):
            d[key].append(line)
        else:
            key, _, value = line.partition(":")
            d[key] = [value.strip()]
    return d


def long_text(lines):
    parts, para = [], []
    for line in lines:
        body = line[1:]  # drop the continuation space
        if body.rstrip() == ".":
            if para:
                parts.append(" ".join(para))
                para = []
        elif body[:1] in (" ", "\t"):  # verbatim
            if para:
                parts.append(" ".join(para))
                para = []
            parts.append(body.rstrip())
        else:
            para.append(body.strip())
    if para:
        parts.append(" ".join(para))
    return "\n".join(p for p in parts if p.strip())


def split_of(source):
    h = int.from_bytes(hashlib.sha256(source.encode("utf-8")).digest()[:8], "big") % 100
    return "train" if h < 90 else "validation" if h < 95 else "test"


source_of = {}
for block in stanzas(one("*_main_binary-amd64_Packages")):
    f = fields(block)
    pkg = f["Package"][0]
    source_of[pkg] = f.get("Source", [pkg])[0].split(" ")[0]
from_sources = {}
sources_files = glob.glob(os.path.join(lists, "*_main_source_Sources"))
if sources_files:
    for block in stanzas(one("*_main_source_Sources")):
        f = fields(block)
        binaries = " ".join(f.get("Binary", [""])).replace(",", " ").split()
        for b in binaries:
            from_sources.setdefault(b, set()).add(f["Package"][0])

records, by_packages, by_sources, own = [], 0, 0, 0
for block in stanzas(one("*_main_i18n_Translation-en")):
    f = fields(block)
    pkg = f["Package"][0]
    desc = f.get("Description-en")
    if not desc:
        continue
    summary, text = desc[0].strip(), long_text(desc[1:])
    if not text or not summary:
        continue
    if pkg in source_of:
        src = source_of[pkg]
        by_packages += 1
    elif pkg in from_sources:
        src = min(from_sources[pkg])
        by_sources += 1
    else:
        src = pkg
        own += 1
    records.append((src, pkg, text, summary))

records.sort()
seen, kept = set(), []
for src, pkg, text, summary in records:
    if (text, summary) not in seen:
        seen.add((text, summary))
        kept.append((src, pkg, text, summary))

parent = {}


def find(x):
    parent.setdefault(x, x)
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


first_source = {}
for src, _, text, _ in kept:
    find(src)
    first = text.split("\n")[0]
    other = first_source.setdefault(first, src)
    a, b = find(other), find(src)
    if a != b:
        parent[max(a, b)] = min(a, b)

rows = [{"package": pkg, "source": src, "split": split_of(find(src)), "text": text,
         "summary": summary} for src, pkg, text, summary in kept]

os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
tmp = out + ".partial"
with open(tmp, "wb") as raw:
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as gz:
        for r in rows:
            gz.write((json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8"))
os.replace(tmp, out)

counts = {s: [0, set()] for s in ("train", "validation", "test")}
for r in rows:
    counts[r["split"]][0] += 1
    counts[r["split"]][1].add(r["source"])
print(f"{len(records)} descriptions with a long text (source from Packages {by_packages}, "
      f"from Sources {by_sources}, own name {own}); {len(rows)} unique (text, summary) pairs "
      f"from {len({r['source'] for r in rows})} source packages in "
      f"{len({find(r['source']) for r in rows})} groups")
for s, (n, srcs) in counts.items():
    print(f"  {s:10} {n:6} pairs  {len(srcs):6} sources")
digest = hashlib.sha256(open(out, "rb").read()).hexdigest()
print(f"wrote {out} ({os.path.getsize(out)} bytes, sha256 {digest})")
