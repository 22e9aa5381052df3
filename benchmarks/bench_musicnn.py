"""musicnn tags and embeddings of a 4-minute song: the numpy port against the original.

What is timed (medians of ``--repeats`` runs after a warm-up, 1 and 2 threads):

* the port, decode -> tags + embeddings: :func:`helpers.features.musicnn.song_tags` with MTT_musicnn
  and MSD_musicnn (one decode, both networks), and with MTT_musicnn alone; its front end alone
  (decode, resampler match, log-mel, patches) and its network alone (one model, all patches);
* the machine's float32 matrix-product rate (``np.matmul`` of two 2048 x 2048 matrices) with
  the same thread count, measured between the network runs, and the network's efficiency:
  its FLOP count over its time over that rate;
* with ``--original-python PATH`` (a Python 3.7 environment with tensorflow-cpu 1.15,
  librosa 0.7.2 and the musicnn 0.1.0 wheel, never part of this project), the original in a
  subprocess: ``musicnn.extractor.extractor`` as its users call it (one call per model: decode,
  graph, restore, one ``sess.run`` per patch), its front end alone (``batch_data``), and its
  network alone (graph restored once; one patch per run as the extractor does, and all patches
  in one run). TF's intra- and inter-op threads and the BLAS threads are set to the same count.
  The same subprocess returns the original's per-patch taggram and penultimate layer of the
  song, which are compared with the port's (the reference files' ``penultimate`` repeats the
  first patch, a bug of the 0.1.0 extractor; here every patch is fetched from the graph).

Also reported: what patch striding (every k-th patch) costs in song-mean agreement with all
patches, on the benchmark song and the three songs of ``music/``.

The song: the first 240 s of ``music/wesnoth_heroes_rite.ogg`` followed by
``music/singularity_coherence.ogg`` (real music, 44.1 kHz stereo), written once as Ogg Vorbis
to a temporary folder.

Usage::

    .venv/bin/python benchmarks/bench_musicnn.py [--original-python /work/tf1/bin/python]
        [--repeats 5] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

SECONDS = 240.0

ORIGINAL_SCRIPT = textwrap.dedent('''
    import json, os, sys, time
    path, threads, repeats, out_npz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    import numpy as np
    import tensorflow as tf
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads,
                                      inter_op_parallelism_threads=threads)
    _Session = tf.compat.v1.Session
    tf.compat.v1.Session = lambda *a, **k: _Session(*a, config=config, **k)
    import musicnn.extractor as ex
    from musicnn import models
    import librosa

    def median_time(fn):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return float(np.median(times))

    result = {"tensorflow": tf.__version__, "librosa": librosa.__version__}
    quiet = open(os.devnull, "w")
    stdout = sys.stdout
    for model in ("MTT_musicnn", "MSD_musicnn"):
        sys.stdout = quiet  # the extractor prints progress
        ex.extractor(path, model=model, extract_features=True)
        result["extractor_" + model] = median_time(
            lambda: ex.extractor(path, model=model, extract_features=True))
        sys.stdout = stdout
    n_frames = librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1
    result["frontend"] = median_time(lambda: ex.batch_data(path, n_frames, n_frames))
    batch, _ = ex.batch_data(path, n_frames, n_frames)
    result["patches"] = int(len(batch))
    outputs = {}
    for model in ("MTT_musicnn", "MSD_musicnn"):
        tf.compat.v1.reset_default_graph()
        with tf.name_scope("model"):
            x = tf.compat.v1.placeholder(tf.float32, [None, n_frames, 96])
            training = tf.compat.v1.placeholder(tf.bool)
            net = models.define_model(x, training, model, 50)
            taggram, penultimate = tf.nn.sigmoid(net[0]), net[-1]
        sess = tf.compat.v1.Session()
        sess.run(tf.compat.v1.global_variables_initializer())
        tf.compat.v1.train.Saver().restore(sess, os.path.dirname(ex.__file__) + "/" + model + "/")
        fetch = [taggram, penultimate]
        tags, pens = sess.run(fetch, feed_dict={x: batch, training: False})
        outputs[model + "/taggram"], outputs[model + "/penultimate"] = tags, pens
        if model == "MTT_musicnn":
            def one_per_run():
                for i in range(len(batch)):
                    sess.run(fetch, feed_dict={x: batch[i:i + 1], training: False})
            one_per_run()
            result["network_batch1"] = median_time(one_per_run)
            result["network_all"] = median_time(
                lambda: sess.run(fetch, feed_dict={x: batch, training: False}))
        sess.close()
    np.savez(out_npz, batch=batch.astype(np.float32), **outputs)
    print(json.dumps(result))
''')


def make_song(folder: Path) -> Path:
    """The 240-s benchmark song (real music), as Ogg Vorbis."""
    import soundfile as sf

    from helpers.paths import shared_data_dir

    base = shared_data_dir()
    if base is None:
        sys.exit("error: the reference data folder ../shared/data is not present")
    parts, sr = [], None
    for name in ("wesnoth_heroes_rite.ogg", "singularity_coherence.ogg"):
        data, rate = sf.read(base / "music" / name, dtype="float32", always_2d=True)
        if sr is None:
            sr = rate
        elif rate != sr:
            import soxr

            data = soxr.resample(data, rate, sr, quality="HQ")
        parts.append(data[:, :2])
    song = np.concatenate(parts)[: int(SECONDS * sr)]
    path = folder / "bench_song_240s.ogg"
    # in blocks: libsndfile's Vorbis encoder crashes on one very large write
    with sf.SoundFile(path, "w", sr, song.shape[1], format="OGG", subtype="VORBIS") as out:
        for start in range(0, len(song), 1 << 15):
            out.write(song[start:start + (1 << 15)])
    return path


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def matmul_rate(threads: int, size: int = 2048, repeats: int = 5) -> float:
    """float32 GFLOP/s of ``np.matmul`` on two size x size matrices (median of runs)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty_like(a)
    with threadpool_limits(threads, user_api="blas"):
        np.matmul(a, b, out=out)
        seconds = median_time(lambda: np.matmul(a, b, out=out), repeats)
    return 2 * size ** 3 / seconds / 1e9


def port_frontend(path: Path) -> np.ndarray:
    """Decode, resampler match, log-mel and patches, as song_tags does them."""
    from helpers.audio import check_audio_info, iter_decoded_blocks
    from helpers.features.musicnn.frontend import SR, LogMelStream, iter_patches
    from helpers.features.musicnn.network import single_threaded_blas

    info = check_audio_info(path)
    stream = LogMelStream(info.samplerate, round(info.duration * info.samplerate))

    def blocks():
        for block in iter_decoded_blocks(path, sr=SR, info=info):
            yield stream.push(block)
        yield stream.finish()

    with single_threaded_blas():
        return np.concatenate(list(iter_patches(blocks())))


def run_original(python: str, path: Path, threads: int, repeats: int, folder: Path) -> dict:
    script = folder / "original_timing.py"
    script.write_text(ORIGINAL_SCRIPT)
    out_npz = folder / f"original_{threads}.npz"
    env = dict(os.environ, PYTHONWARNINGS="ignore", TF_CPP_MIN_LOG_LEVEL="3",
               CUDA_VISIBLE_DEVICES="")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    done = subprocess.run([python, str(script), str(path), str(threads), str(repeats),
                           str(out_npz)], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        sys.exit(f"error: the original failed ({python}):\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["outputs"] = dict(np.load(out_npz))
    return result


def stride_cost(songs: list[Path]) -> dict[int, dict[str, float]]:
    """Song-mean agreement of every k-th patch with all patches (lowest over the songs)."""
    from helpers.features.musicnn import song_tags

    worst: dict[int, dict[str, float]] = {}
    for song in songs:
        full = song_tags(song)
        for k in (2, 3, 4):
            entry = worst.setdefault(k, {"cosine": 1.0, "top3": 3})
            for model in full.models:
                a = full.penultimate[model].mean(axis=0)
                b = full.penultimate[model][::k].mean(axis=0)
                entry["cosine"] = min(entry["cosine"],
                                      float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)))
                top_all = set(np.argsort(-full.taggram[model].mean(axis=0))[:3])
                top_k = set(np.argsort(-full.taggram[model][::k].mean(axis=0))[:3])
                entry["top3"] = min(entry["top3"], len(top_all & top_k))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--original-python", help="Python 3.7 with TF 1.15 and musicnn 0.1.0")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    from helpers.features.musicnn import load_model, song_tags
    from helpers.features.musicnn.network import FLOPS_PER_PATCH
    from helpers.paths import shared_data_dir

    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        song = make_song(folder)
        print(f"song: {SECONDS:.0f} s of real music ({song.name}, 44.1 kHz stereo Ogg Vorbis)",
              flush=True)
        models = {name: load_model(name) for name in ("MTT_musicnn", "MSD_musicnn")}
        patches = port_frontend(song)
        song_tags(song)  # warm-up: equaliser design for 44.1 kHz, scratch buffers
        flops = FLOPS_PER_PATCH * len(patches)
        print(f"network: {FLOPS_PER_PATCH / 1e9:.3f} GFLOP per patch, {len(patches)} patches, "
              f"{flops / 1e9:.1f} GFLOP per model")
        port: dict[int, dict[str, float]] = {}
        for threads in args.threads:
            rates, network_times = [], []
            net = models["MTT_musicnn"]
            net.forward(patches[:4], threads=threads)
            for _ in range(args.repeats):  # interleaved, so both see the same machine load
                rates.append(matmul_rate(threads, repeats=3))
                network_times.append(median_time(lambda n=net, t=threads: n.forward(
                    patches, threads=t), 1))
            both = median_time(lambda t=threads: song_tags(song, threads=t), args.repeats)
            one = median_time(lambda t=threads: song_tags(song, models=("MTT_musicnn",),
                                                          threads=t), args.repeats)
            front = median_time(lambda: port_frontend(song), args.repeats)
            rate, network_time = float(np.median(rates)), float(np.median(network_times))
            port[threads] = {"both": both, "one": one, "frontend": front,
                             "network": network_time, "rate": rate}
            print(f"\n[{threads} thread{'s' if threads > 1 else ''}] port")
            print(f"  decode -> tags + embeddings, MTT + MSD: {both:6.2f} s")
            print(f"  decode -> tags + embeddings, MTT only : {one:6.2f} s")
            print(f"  front end (decode, resampler match, log-mel): {front:6.2f} s")
            print(f"  network alone (one model, {len(patches)} patches): {network_time:6.2f} s"
                  f" = {flops / network_time / 1e9:6.1f} GFLOP/s")
            print(f"  machine float32 matmul rate: {rate:6.1f} GFLOP/s -> network efficiency "
                  f"{flops / network_time / 1e9 / rate:.2f}")
            if args.original_python:
                original = run_original(args.original_python, song, threads, args.repeats,
                                        folder)
                o_both = original["extractor_MTT_musicnn"] + original["extractor_MSD_musicnn"]
                print(f"[{threads} thread{'s' if threads > 1 else ''}] original (TF "
                      f"{original['tensorflow']}, librosa {original['librosa']})")
                print(f"  extractor(), MTT + MSD (two calls): {o_both:6.2f} s   "
                      f"-> port {o_both / both:.1f}x faster")
                print(f"  extractor(), MTT only              : "
                      f"{original['extractor_MTT_musicnn']:6.2f} s   -> port "
                      f"{original['extractor_MTT_musicnn'] / one:.1f}x faster")
                print(f"  front end (librosa load + melspectrogram): {original['frontend']:6.2f}"
                      f" s   -> port {original['frontend'] / front:.1f}x faster")
                print(f"  network alone, one patch per run (as extractor): "
                      f"{original['network_batch1']:6.2f} s   -> port "
                      f"{original['network_batch1'] / network_time:.1f}x faster")
                print(f"  network alone, all patches in one run: {original['network_all']:6.2f}"
                      f" s   -> port {original['network_all'] / network_time:.1f}x faster")
                if threads == args.threads[0]:
                    compare(original, song, patches)

        songs = [song] + sorted((shared_data_dir() / "music").glob("*.ogg"))
        print("\npatch striding (every k-th patch) against all patches, worst of "
              f"{len(songs)} songs x 2 models:")
        for k, cost in stride_cost(songs).items():
            print(f"  k={k}: song-mean penultimate cosine >= {cost['cosine']:.4f}, "
                  f"top-3 tags shared >= {cost['top3']} of 3, network time / {k}")


def compare(original: dict, song: Path, patches: np.ndarray) -> None:
    """The port's outputs against the original's on the benchmark song."""
    from helpers.features.musicnn import load_model, song_tags

    result = song_tags(song)
    batch = original["outputs"]["batch"]
    print(f"  agreement on this song ({len(batch)} patches, original {original['patches']}):")
    print(f"    log-mel input: largest difference {np.abs(batch - patches).max():.3f}, "
          f"mean {np.abs(batch - patches).mean():.5f}")
    for model in ("MTT_musicnn", "MSD_musicnn"):
        theirs_tag = original["outputs"][f"{model}/taggram"]
        theirs_pen = original["outputs"][f"{model}/penultimate"]
        same_input = load_model(model).forward(batch)
        ours_tag, ours_pen = result.taggram[model], result.penultimate[model]
        a, b = ours_pen.mean(axis=0), theirs_pen.mean(axis=0)
        top = set(np.argsort(-ours_tag.mean(0))[:3]) == set(np.argsort(-theirs_tag.mean(0))[:3])
        print(f"    {model}: same input: taggram {np.abs(same_input['taggram'] - theirs_tag).max():.1e},"
              f" penultimate (every patch) {np.abs(same_input['penultimate'] - theirs_pen).max():.1e};"
              f" end to end: top-3 {'equal' if top else 'DIFFERENT'}, song-mean penultimate "
              f"cosine {a @ b / np.linalg.norm(a) / np.linalg.norm(b):.5f}")


if __name__ == "__main__":
    main()
