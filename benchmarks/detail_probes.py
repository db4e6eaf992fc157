"""Where the fine detail gets lost: three probes of a trained run on the shapes dataset.

    python benchmarks/detail_probes.py text RUN_DIR
    python benchmarks/detail_probes.py discriminator RUN_DIR [--index 2] [--images 400]
    python benchmarks/detail_probes.py unmentioned RUN_DIR [--images 2000]
    python benchmarks/detail_probes.py fd-share RUN_DIR [--images 2000]

``text``: the run's frozen text features of captions that differ in one attribute only
("a dotted pink rhombus" / "an outlined pink rhombus" ...): the mean cosine similarity of every
pair, for the sentence, the mean of the real words and the word that differs. Near 1 means the
generator's and the discriminators' text side can barely tell those captions apart.

``discriminator``: a trained conditional D on real test images: how often its conditional
logit is highest for the caption naming the image's true fine detail, out of the four details
(chance 0.25), and its true colour, out of eight (chance 0.125). A D that cannot tell the
details apart on real images cannot teach a generator to draw the one a caption asks for.
Captions are "a {detail} {colour} {shape}" built from the image's ground truth; a word head's
per-word logits are averaged per caption.

``unmentioned``: what the generator draws where the caption leaves an attribute open. For the
test captions that do not name the fine detail (the colour), the oracle's reading of the EMA
generator's last-stage images, as a share per detail (colour), against the real test images of
those captions; and their total-variation distance (0: the same spread, 1: disjoint). A
generator that answers "no detail named" with one detail is a mode collapse that FD sees and
the mentioned-attribute accuracies do not.

``fd-share``: which captions the generator's FD[oracle] comes from. FD is not a sum over images,
so a subset's FD alone says little (small subsets have large floors). Instead, the generated
images of one caption group (colour not named, detail not named, detail named) are replaced by
as many real train images, and the FD of the mixed set against the real test images is set
beside the same replacement of random rows of that count (5 draws). A group whose replacement
lowers FD more than random rows do holds more than its share of the FD.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import torch

DETAIL_WORDS = {"none": "plain", "dot": "dotted", "stripes": "striped", "outline": "outlined"}
COLOURS = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink")
SHAPES = ("diamond", "circle", "star", "square")


def _normalised(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x, dim=1)


def text_probe(run_dir: Path) -> dict[str, dict[str, float]]:
    """Mean pairwise cosine of captions differing in one attribute (position of the word)."""
    from t2i_stages.api import load_run

    run = load_run(run_dir)
    fines, colours = list(DETAIL_WORDS.values()), COLOURS[:4]
    groups = {
        "fine": [([f"a {f} {c} {s}" for f in fines], 1) for c in colours for s in SHAPES],
        "colour": [([f"a {f} {c} {s}" for c in colours], 2) for f in fines for s in SHAPES],
        "shape": [([f"a {f} {c} {s}" for s in SHAPES], 3) for f in fines for c in colours],
    }
    out = {}
    with torch.no_grad():
        for name, caption_sets in groups.items():
            sims: dict[str, list[float]] = {"sentence": [], "mean_words": [], "the_word": []}
            for captions, position in caption_sets:
                t = run.encode(captions)
                m = t.mask.unsqueeze(1).to(t.words.dtype)
                feats = {
                    "sentence": _normalised(t.sentence),
                    "mean_words": _normalised((t.words * m).sum(2) / m.sum(2)),
                    "the_word": _normalised(t.words[:, :, position]),
                }
                for key, f in feats.items():
                    sims[key] += [
                        float(f[i] @ f[j]) for i, j in itertools.combinations(range(4), 2)
                    ]
            out[name] = {k: sum(v) / len(v) for k, v in sims.items()}
    return out


def discriminator_probe(run_dir: Path, index: int = 2, images: int = 400) -> dict[str, float]:
    """Share of real test images whose true detail (colour) gets D's highest conditional logit."""
    from t2i_stages.api import load_run
    from t2i_stages.build import assemble
    from t2i_stages.checkpoint import latest_good_checkpoint
    from t2i_stages.plugins.datasets.shapes.scene import decode_attributes

    run = load_run(run_dir)  # the text side with its trained weights, as the D saw it
    parts = ["data", "discriminators"]
    built = assemble(run.recipe, run.registry, parts=parts, splits=("test",), log=lambda _: None)
    ckpt = latest_good_checkpoint(run_dir / "checkpoints")
    D = built.discriminators[index]
    D.load_state_dict(ckpt.components[f"discriminator_{index}"])
    D.eval()
    data = built.datasets["test"]
    encode = run.encode
    grid = int(getattr(run.recipe.data.dataset.resolved, "grid", 1))

    def pick(features: torch.Tensor, captions: list[str]) -> int:
        n = len(captions)
        logits = D.cond_logits(features.expand(n, -1, -1, -1), D.condition(encode(captions)))
        return int(logits.reshape(n, -1).mean(1).argmax())

    right_fine = right_colour = n_colour = 0
    with torch.no_grad():
        for i in range(images):
            item = data[i]
            obj = decode_attributes(item["attributes"], grid=grid)[0]
            f = D(item["images"][index].unsqueeze(0))
            captions = [f"a {w} {obj['color']} {obj['shape']}" for w in DETAIL_WORDS.values()]
            right_fine += list(DETAIL_WORDS)[pick(f, captions)] == obj["fine"]
            if obj["color"] in COLOURS:
                word = DETAIL_WORDS[obj["fine"]]
                captions = [f"a {word} {c} {obj['shape']}" for c in COLOURS]
                right_colour += COLOURS[pick(f, captions)] == obj["color"]
                n_colour += 1
    return {"fine": right_fine / images, "colour": right_colour / max(n_colour, 1)}


def _last_stage_images(run, data, n: int, seed: int):
    """The first ``n`` test captions (the first caption of each image), their first object's
    ground truth, and the EMA generator's last-stage images in batches of 200 (a generator)."""
    captions = [data.captions(i)[0] for i in range(n)]
    truth = torch.stack([data.attributes(i, 0)[0] for i in range(n)])  # the first object

    def batches():
        with torch.no_grad():
            for start in range(0, n, 200):
                out = run.generate(captions[start : start + 200], seed=seed + start)
                yield out.images[-1].float().cpu()

    return truth, batches()


def unmentioned_probe(run_dir: Path, images: int = 2000, seed: int = 0) -> dict[str, dict]:
    """Per unmentioned attribute: the generated and the real shares of each value, and their
    total-variation distance."""
    import numpy as np

    from t2i_stages.api import load_run
    from t2i_stages.build import assemble
    from t2i_stages.plugins.datasets.shapes.oracle import load_oracle
    from t2i_stages.plugins.datasets.shapes.params import FINES
    from t2i_stages.plugins.datasets.shapes.scene import (
        COLOR_NAMES,
        F_COLOR,
        F_FINE,
        M_COLOR,
        M_FINE,
    )

    run = load_run(run_dir)
    built = assemble(run.recipe, run.registry, parts=["data"], splits=("test",), log=lambda _: None)
    data = built.datasets["test"]
    oracle = load_oracle(run.recipe.data.dataset.resolved)
    n = min(images, len(data))
    truth, images_ = _last_stage_images(run, data, n, seed)
    pred = torch.cat([oracle.predict(x)[:, 0] for x in images_])
    result = {}
    for name, values, value_col, mention_col in (
        ("fine", FINES, F_FINE, M_FINE),
        ("colour", COLOR_NAMES, F_COLOR, M_COLOR),
    ):
        open_ = truth[:, mention_col] != 1
        k, count = len(values), max(int(open_.sum()), 1)
        fake = np.bincount(pred[open_, value_col].numpy(), minlength=k)[:k] / count
        real = np.bincount(truth[open_, value_col].numpy(), minlength=k)[:k] / count
        shown = [j for j in range(k) if fake[j] > 0 or real[j] > 0]  # the dataset's values
        result[name] = {
            "captions": int(open_.sum()),
            "generated": {values[j]: round(float(fake[j]), 3) for j in shown},
            "real": {values[j]: round(float(real[j]), 3) for j in shown},
            "tv": float(0.5 * np.abs(fake - real).sum()),
        }
    return result


def fd_share_probe(run_dir: Path, images: int = 2000, seed: int = 0) -> dict[str, dict]:
    """FD[oracle] of the generated test set, and of it with each caption group's images
    replaced by real train images, against random rows of the same count."""
    import numpy as np

    from t2i_stages.api import load_run
    from t2i_stages.build import assemble
    from t2i_stages.evaluation.extractors import oracle_extractor
    from t2i_stages.plugin import GaussianStats, stats_distance, to_uint8
    from t2i_stages.plugins.datasets.shapes.scene import M_COLOR, M_FINE
    from t2i_stages.plugins.metrics.floor import real_batches

    run = load_run(run_dir)
    built = assemble(
        run.recipe, run.registry, parts=["data"], splits=("train", "test"), log=lambda _: None
    )
    train, test = built.datasets["train"], built.datasets["test"]
    n = min(images, len(test), len(train))
    res = int(run.recipe.data.dataset.resolved.resolutions[-1])
    ex = oracle_extractor(test.oracle(resolution=res), "cpu")
    feats = lambda ds: np.concatenate([ex.features(x, 200) for x in real_batches(ds, n, res, 200)])  # noqa: E731
    real, real_train = feats(test), feats(train)
    truth, images_ = _last_stage_images(run, test, n, seed)
    fake = np.concatenate([ex.features(to_uint8(x), 200) for x in images_])
    ref = GaussianStats.from_features(real)

    def fd_replacing(rows: np.ndarray) -> float:
        mixed = fake.copy()
        mixed[rows] = real_train[: int(rows.sum())]
        return float(stats_distance(GaussianStats.from_features(mixed), ref))

    result: dict[str, dict] = {
        "all": {"fd": float(stats_distance(GaussianStats.from_features(fake), ref))},
        "floor": {"fd": float(stats_distance(GaussianStats.from_features(real_train), ref))},
    }
    groups = {
        "colour not named": (truth[:, M_COLOR] != 1).numpy(),
        "detail not named": (truth[:, M_FINE] != 1).numpy(),
        "detail named": (truth[:, M_FINE] == 1).numpy(),
    }
    for name, rows in groups.items():
        randoms = []
        for r in range(5):
            pick = np.zeros(n, dtype=bool)
            pick[np.random.default_rng(r).choice(n, int(rows.sum()), replace=False)] = True
            randoms.append(fd_replacing(pick))
        result[name] = {
            "captions": int(rows.sum()),
            "fd_replaced": fd_replacing(rows),
            "fd_random": float(np.mean(randoms)),
            "fd_random_range": (float(min(randoms)), float(max(randoms))),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="probe", required=True)
    t = sub.add_parser("text", help="cosine of captions differing in one attribute")
    t.add_argument("run", type=Path)
    d = sub.add_parser("discriminator", help="does a D pick the true detail of real images")
    d.add_argument("run", type=Path)
    d.add_argument("--index", type=int, default=2, help="which discriminator (default: the last)")
    d.add_argument("--images", type=int, default=400, help="real test images to score")
    u = sub.add_parser("unmentioned", help="what G draws where the caption leaves detail open")
    u.add_argument("run", type=Path)
    u.add_argument("--images", type=int, default=2000, help="test captions to generate for")
    f = sub.add_parser("fd-share", help="which captions the FD comes from")
    f.add_argument("run", type=Path)
    f.add_argument("--images", type=int, default=2000, help="test captions to generate for")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if not (args.run / "checkpoints").is_dir():
        print(f"error: {args.run}: not a run folder (no checkpoints/)", file=sys.stderr)
        return 2
    if args.probe == "text":
        for name, sims in text_probe(args.run).items():
            cells = "  ".join(f"{k} {v:.3f}" for k, v in sims.items())
            print(f"captions differing in {name}: cosine {cells}")
    elif args.probe == "unmentioned":
        for name, r in unmentioned_probe(args.run, args.images).items():
            print(f"{name} not named ({r['captions']} captions): total variation {r['tv']:.3f}")
            print(f"  generated {r['generated']}")
            print(f"  real      {r['real']}")
    elif args.probe == "fd-share":
        r = fd_share_probe(args.run, args.images)
        print(f"FD[oracle] {r['all']['fd']:.2f} (real train vs test: {r['floor']['fd']:.2f})")
        for name, g in r.items():
            if "captions" in g:
                lo, hi = g["fd_random_range"]
                print(
                    f"  {name} ({g['captions']} captions) replaced by real images: FD "
                    f"{g['fd_replaced']:.2f}; the same count of random rows: {g['fd_random']:.2f} "
                    f"({lo:.2f}-{hi:.2f})"
                )
    else:
        r = discriminator_probe(args.run, args.index, args.images)
        print(
            f"{args.run}: discriminator {args.index} (from 0) picks the true fine detail {r['fine']:.3f} (chance 0.25), "
            f"the true colour {r['colour']:.3f} (chance 0.125)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
