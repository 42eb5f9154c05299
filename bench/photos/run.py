"""bench/photos: 12-megapixel phone JPEGs through the proof pipeline against plain Pillow.

One command, from the repository root with the virtualenv active:

    python bench/photos/run.py            # ~1 min: 4 photos, 2 rounds x 5 iterations per pipeline
    python bench/photos/run.py --quick    # ~15 s: 2 photos, 1 round x 2 iterations

Photos: 4000x3000 JPEGs at quality 92 with gradients, shapes, sensor-like noise and an EXIF
orientation (1, 6, 3, 8 in turn), made once and cached in bench/results/photos-input/ (git-ignored).

Pipelines, each run in its own fresh subprocess so that its peak RSS (VmHWM) is its own:
  ours        app.media.images.process(): JPEG draft decode, resize, transpose, re-encode + thumbnail
  ours-exact  the same with DRAFT_TOLERANCE = 1.0, so a 4000 px photo is decoded in full to reach
              exactly 2048 px (shows what the draft decode buys)
  plain       Image.open -> ImageOps.exif_transpose -> resize(2048, LANCZOS) -> save(q85),
              then resize(320, LANCZOS) -> save(q85) for the thumbnail
  idle        reads the same files and imports Pillow, decodes nothing: the RSS floor
Each image is run once to warm up, then timed `--iterations` times; the median per image is kept
(over all rounds). Rounds alternate the pipelines so drift on a shared machine hits all of them.
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"
INPUT = RESULTS / "photos-input"
SIZE = (4000, 3000)
ORIENTATIONS = (1, 6, 3, 8)
MAX_PIXELS = 40_000_000
PIPELINES = ("ours", "ours-exact", "plain")
GOAL = 2.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 photos, 1 round x 2 iterations")
    parser.add_argument("--photos", type=int, help="number of photos (default 4, quick 2)")
    parser.add_argument("--rounds", type=int, help="rounds per pipeline (default 2, quick 1)")
    parser.add_argument("--iterations", type=int, help="timed runs per photo (default 5, quick 2)")
    parser.add_argument("--worker", choices=PIPELINES + ("idle",), help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.photos = args.photos or (2 if args.quick else 4)
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.iterations = args.iterations or (2 if args.quick else 5)
    return args


# --- input photos -------------------------------------------------------------------------------

def make_photo(seed: int, orientation: int) -> bytes:
    from PIL import Image, ImageDraw, ImageFilter

    rng = random.Random(seed)
    gradient = Image.linear_gradient("L").rotate(rng.uniform(0, 360)).resize(SIZE)
    image = Image.merge("RGB", [gradient.point(lambda v, k=rng.uniform(0.4, 1.0): int(v * k))
                                for _ in range(3)])
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x0, y0 = rng.randrange(SIZE[0]), rng.randrange(SIZE[1])
        box = (x0, y0, x0 + rng.randrange(100, 1500), y0 + rng.randrange(100, 1200))
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.6 else draw.rectangle)(box, fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(2))
    noise = Image.merge("RGB", [Image.effect_noise(SIZE, 40) for _ in range(3)])
    image = Image.blend(image, noise, 0.12)  # sensor noise: gives the file a phone-like size
    exif = Image.Exif()
    exif.update({0x010F: "BenchPhone", 0x0110: "BP-12", 0x0112: orientation})
    exif.get_ifd(0x8825).update({1: "N", 2: (25.0, 6.0, 30.0), 3: "E", 4: (118.0, 52.0, 6.0)})
    out = BytesIO()
    image.save(out, "JPEG", quality=92, exif=exif)
    return out.getvalue()


def input_photos(count: int) -> list[Path]:
    INPUT.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        orientation = ORIENTATIONS[n % len(ORIENTATIONS)]
        path = INPUT / f"phone-{n + 1}-o{orientation}.jpg"
        if not path.exists():
            print(f"making {path.relative_to(ROOT)} ...", flush=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(make_photo(1000 + n, orientation))
            tmp.replace(path)
        paths.append(path)
    return paths


# --- the pipelines (run inside a worker subprocess) -----------------------------------------------

def plain(data: bytes) -> tuple[bytes, bytes]:
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(Image.open(BytesIO(data)))
    scale = 2048 / max(image.size)
    full = image.resize((round(image.width * scale), round(image.height * scale)),
                        Image.Resampling.LANCZOS)
    scale = 320 / max(full.size)
    thumb = full.resize((round(full.width * scale), round(full.height * scale)),
                        Image.Resampling.LANCZOS)
    outputs = []
    for picture in (full, thumb):
        out = BytesIO()
        picture.save(out, "JPEG", quality=85)
        outputs.append(out.getvalue())
    return outputs[0], outputs[1]


def peak_rss_kib() -> int:
    """This process's own peak RSS. VmHWM belongs to the address space made by exec, whereas
    ru_maxrss also counts the parent's pages that the child had before exec (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def worker(pipeline: str, files: list[str], iterations: int) -> dict:
    from PIL import Image

    from app.media import images

    blobs = [Path(name).read_bytes() for name in files]
    if pipeline == "idle":
        return {"pipeline": pipeline, "maxrss_kib": peak_rss_kib()}
    if pipeline == "ours-exact":
        images.DRAFT_TOLERANCE = 1.0
    if pipeline == "plain":
        run = plain
    else:
        def run(data: bytes) -> tuple[bytes, bytes]:
            result = images.process(data, max_pixels=MAX_PIXELS)
            return result.image, result.thumbnail
    timings, outputs = {}, {}
    for name, data in zip(files, blobs):
        full, thumb = run(data)  # warm-up
        outputs[name] = {"full": list(Image.open(BytesIO(full)).size), "full_bytes": len(full),
                         "thumb": list(Image.open(BytesIO(thumb)).size)}
        timings[name] = []
        for _ in range(iterations):
            started = time.perf_counter()
            run(data)
            timings[name].append((time.perf_counter() - started) * 1000)
    return {"pipeline": pipeline, "ms": timings, "outputs": outputs,
            "maxrss_kib": peak_rss_kib()}


def spawn(pipeline: str, files: list[Path], iterations: int) -> dict:
    command = [sys.executable, __file__, "--worker", pipeline, "--iterations", str(iterations),
               *map(str, files)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{pipeline} worker failed:\n{done.stderr}")
    return json.loads(done.stdout)


# --- the report -----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.files, args.iterations)))
        return 0
    files = input_photos(args.photos)
    runs: dict[str, list[dict]] = {name: [] for name in PIPELINES}
    idle = spawn("idle", files, 0)["maxrss_kib"]
    started = time.perf_counter()
    for round_no in range(args.rounds):
        order = PIPELINES if round_no % 2 == 0 else tuple(reversed(PIPELINES))
        for pipeline in order:
            runs[pipeline].append(spawn(pipeline, files, args.iterations))
    report = summarise(files, runs, idle)
    print_report(report, args, time.perf_counter() - started)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"photos-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"raw results: {path.relative_to(ROOT)}")
    return 0


def summarise(files: list[Path], runs: dict[str, list[dict]], idle_kib: int) -> dict:
    rows = []
    for path in files:
        row = {"photo": path.name, "mb": round(path.stat().st_size / 1e6, 2)}
        for pipeline, results in runs.items():
            samples = [ms for result in results for ms in result["ms"][str(path)]]
            row[pipeline] = round(statistics.median(samples), 1)
            row[f"{pipeline}_out"] = results[0]["outputs"][str(path)]
        row["ratio"] = round(row["plain"] / row["ours"], 2)
        rows.append(row)
    peak = {name: max(r["maxrss_kib"] for r in results) / 1024 for name, results in runs.items()}
    return {"rows": rows, "peak_rss_mb": peak, "idle_rss_mb": idle_kib / 1024,
            "median_ratio": statistics.median(row["ratio"] for row in rows)}


def print_report(report: dict, args: argparse.Namespace, seconds: float) -> None:
    print(f"\n{args.photos} photos 4000x3000, {args.rounds} round(s) x {args.iterations} "
          f"iteration(s), median ms per photo (full + thumbnail)\n")
    header = f"{'photo':<18}{'MB':>6}{'ours':>9}{'ours-exact':>12}{'plain':>9}{'plain/ours':>12}"
    print(header)
    print("-" * len(header))
    for row in report["rows"]:
        print(f"{row['photo']:<18}{row['mb']:>6.2f}{row['ours']:>9.1f}{row['ours-exact']:>12.1f}"
              f"{row['plain']:>9.1f}{row['ratio']:>11.2f}x")
    first = report["rows"][0]
    print(f"\noutput of {first['photo']}: ours {first['ours_out']['full']} "
          f"({first['ours_out']['full_bytes'] // 1024} KiB), ours-exact {first['ours-exact_out']['full']}, "
          f"plain {first['plain_out']['full']}; thumbnails {first['ours_out']['thumb']} / "
          f"{first['plain_out']['thumb']}")
    idle = report["idle_rss_mb"]
    print(f"peak RSS (MB, over the {idle:.0f} MB idle floor): " + ", ".join(
        f"{name} {mb:.0f} (+{mb - idle:.0f})" for name, mb in report["peak_rss_mb"].items()))
    ratio = report["median_ratio"]
    verdict = "met" if ratio >= GOAL else "NOT met"
    print(f"speed ratio plain/ours (median): {ratio:.2f}x — goal >= {GOAL:.0f}x {verdict}"
          f"  [{seconds:.0f} s]")


if __name__ == "__main__":
    sys.exit(main())
