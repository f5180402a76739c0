#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""make bench-sfc: images/s of sfc-trainstep at SFC's training shape and of
sfc-cam on a 500x375 image, each beside PyTorch running the same network
(tests/ref/ref_sfc.py's SFCNet at ResNet-50 size) on this machine in the
same run. Writes the bench-sfc section of BENCHMARKS.md.

  sfc.py run BINDIR        the whole benchmark (what make runs)
  sfc.py report [RAW.json] rewrite the section from a run's numbers
                           (build/bench-sfc.json)
  sfc.py torch-train STEPS | torch-cam RUNS
                           the PyTorch side, one configuration per process;
                           prints "mode median peak_MB"

sfc side: the real tools on a throw-away db. sfc-toygen makes 48 training
images of 512x512 with 20 classes (and 3 val images, resized to 500x375),
sfc-sample a schedule of batch 16 + 4 bank draws on a 512 canvas (3 steps),
sfc-trainstep trains ResNet-50 from random weights (no ImageNet file:
random weights cost the same) with conv1..layer2 frozen (--frozen 3), and
sfc-cam computes the CAMs of each val image at scales 1, 0.5, 1.5, 2 with
flips, one process per image. sfc-trainstep runs with --micro-batch
MICRO (env SFC_MICRO; default the tool's own: 4 at 512x512). images/s of a step = images in the step /
its seconds (train_log, which the tool writes; the first step includes the
plan's allocation); peak RSS of each process (wait4).

PyTorch side: SFCNet(C=20) with ResNet-50 (strides 2,2,2,1, frozen BN),
conv1..layer2 without gradients, the losses of sfc_losses (two scales,
L_cls + L_PDW + L_WDW), backward and an SGD step on 20 random 512x512
images, in micro-batches of MICRO images like sfc-trainstep's (each
micro-batch's loss weighted by its share of the 20, gradients accumulated;
the whole batch at once needs about 18 GB in PyTorch); CAM inference = cam_infer at the four scales (bicubic resize, with
the flip), each resized to full size and summed. torch.set_num_threads(2).
"""
import datetime
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys

import report as bench_report  # bench/report.py: the BENCHMARKS.md section writer
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "ref"))

BEGIN, END = "<!-- bench-sfc begin -->", "<!-- bench-sfc end -->"
PY = "/usr/bin/python3"
SCALES = (1.0, 0.5, 1.5, 2.0)
# BENCH_SMOKE=1: a tiny network and small images, to check the harness
# quickly; prints the section without writing BENCHMARKS.md
SMOKE = os.environ.get("BENCH_SMOKE") == "1"
RAW = "build/bench-sfc.json"  # the last run's measurements
NET = dict(blocks=(1, 1, 1, 1), width=8) if SMOKE else {}
SIDE = (8, 8, 16, 16) if SMOKE else (128, 128, 256, 256)
S_TRAIN = 128 if SMOKE else 512
CAM_HW = (94, 125) if SMOKE else (375, 500)
# images per forward/backward pass on both sides (gradients accumulated
# over the step): sfc-trainstep's default, 2^20 input pixels (4 at 512)
MICRO = int(os.environ.get("SFC_MICRO", max(1, 2 ** 20 // S_TRAIN ** 2)))


def cpu_self():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---- PyTorch -------------------------------------------------------------

def torch_net():
    import torch
    from ref_sfc import SFCNet
    torch.set_num_threads(2)
    torch.manual_seed(1)
    net = SFCNet(C=20, side=SIDE, **NET)
    bb = net.backbone
    for m in (bb.conv1, bb.bn1, bb.layer1, bb.layer2):
        for p in m.parameters():
            p.requires_grad_(False)
    return net


def cmd_torch_train(steps):
    import torch
    from ref_sfc import sfc_losses
    net = torch_net()
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad],
                          lr=0.01, momentum=1e-4, weight_decay=1e-4)
    N, S, C = 20, S_TRAIN, 20
    g = torch.Generator().manual_seed(2)
    img = torch.randn(N, 3, S, S, generator=g)
    label = (torch.rand(N, C, generator=g) < 0.15).float()
    label[:, 0] = 1
    vmask = torch.ones(N, C + 1, S, S)
    dc = torch.rand(C, generator=g) + 0.5
    ts, cs = [], []
    for r in range(-1, steps):
        t0, c0 = time.perf_counter(), cpu_self()
        opt.zero_grad()
        for lo in range(0, N, MICRO):  # micro-batches, each weighted n/N
            hi = min(N, lo + MICRO)
            l_cls, l_pdw, l_wdw, _, _ = sfc_losses(
                net, img[lo:hi], label[lo:hi], vmask[lo:hi], dc)
            ((l_cls + l_pdw + l_wdw) * ((hi - lo) / N)).backward()
        torch.nn.utils.clip_grad_norm_(
            [p for p in net.parameters() if p.requires_grad], 1.0)
        opt.step()
        if r >= 0:
            ts.append(N / (time.perf_counter() - t0))
            cs.append((cpu_self() - c0) / N)
    print("torch-train %.4f %.0f %.4f" % (statistics.median(ts), peak_mb(),
                                          statistics.median(cs)))


def cmd_torch_cam(runs):
    import torch
    import torch.nn.functional as F
    from ref_sfc import cam_infer
    net = torch_net()
    net.eval()
    (H, W), C = CAM_HW, 20
    g = torch.Generator().manual_seed(3)
    img = torch.randn(1, 3, H, W, generator=g)
    y21 = torch.zeros(C + 1)
    y21[0] = y21[3] = y21[12] = 1
    ts, cs = [], []
    for r in range(-1, runs):
        t0, c0 = time.perf_counter(), cpu_self()
        with torch.no_grad():
            sw = sp = 0
            for s in SCALES:
                x = F.interpolate(img, (round(H * s), round(W * s)),
                                  mode="bicubic", align_corners=False)
                mw, mp = cam_infer(net, torch.cat([x, x.flip(-1)]), y21)
                sw = sw + F.interpolate(mw[None], (H, W), mode="bilinear",
                                        align_corners=False)[0]
                sp = sp + F.interpolate(mp[None], (H, W), mode="bilinear",
                                        align_corners=False)[0]
        if r >= 0:
            ts.append(time.perf_counter() - t0)
            cs.append(cpu_self() - c0)
    print("torch-cam %.4f %.0f %.4f" % (statistics.median(ts), peak_mb(),
                                        statistics.median(cs)))


# ---- the driver ----------------------------------------------------------

def run(args, env=None):
    """Run a command; returns (stdout, wall seconds, peak RSS MB, CPU
    seconds of all its threads)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, env=env,
                         universal_newlines=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    sec = time.perf_counter() - t0
    if p.returncode:
        raise SystemExit("bench-sfc: %s failed (%d)" % (args[0], p.returncode))
    cpu = ru.ru_utime + ru.ru_stime
    print("  %s: %.1f s, %.1f CPU s, %.0f MB" % (
        " ".join(args[:3]), sec, cpu, ru.ru_maxrss / 1024.0), file=sys.stderr)
    return out, sec, ru.ru_maxrss / 1024.0, cpu


def val_to_500x375(toy):
    from PIL import Image
    ids = open(os.path.join(toy, "ImageSets", "Segmentation",
                            "val.txt")).read().split()
    for i in ids:
        p = os.path.join(toy, "JPEGImages", i + ".jpg")
        H, W = CAM_HW
        Image.open(p).resize((W, H), Image.BICUBIC).save(p, quality=90)
        m = os.path.join(toy, "SegmentationClass", i + ".png")
        Image.open(m).resize((W, H), Image.NEAREST).save(m)
    return ids


def cmd_run(bindir):
    env = dict(os.environ, OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2",
               OMP_WAIT_POLICY="PASSIVE")
    os.environ.update(env)
    load0 = open("/proc/loadavg").read().split()[:3]
    print("machine load before: %s" % " ".join(load0), file=sys.stderr)
    tmp = tempfile.mkdtemp(prefix="bench-sfc.")
    b = lambda t: os.path.join(bindir, t)
    toy, db = os.path.join(tmp, "toy"), os.path.join(tmp, "sfc.db")
    run([b("sfc-toygen"), "--out", toy, "--size", str(S_TRAIN), "--train",
         "48",
         "--val", "3", "--classes", "20", "--seed", "0", "-q"], env)
    ids = val_to_500x375(toy)
    run([b("sfc-ingest"), "--db", db, "-q", toy], env)
    run([b("sfc-sample"), "--db", db, "--split", "train", "--epochs", "1",
         "--batch", "16", "--draws", "4", "--crop", str(S_TRAIN), "--seed",
         "0", "-q"], env)
    out = os.path.join(tmp, "train")
    net = ["--blocks", "1,1,1,1", "--width", "8", "--side",
           "8,8,16,16"] if SMOKE else []
    _, tr_sec, tr_mb, tr_cpu = run([b("sfc-trainstep"), "--db", db, "--out",
                                    out, "--frozen", "3", "--seed", "0",
                                    "--micro-batch", str(MICRO), "-q"] + net,
                                   env)
    con = sqlite3.connect(db)
    rows = con.execute("SELECT step, images_per_s, seconds FROM train_log "
                       "WHERE run = (SELECT max(run) FROM train_log) "
                       "ORDER BY step").fetchall()
    con.close()
    steps = [(s, ips, sec, round(ips * sec)) for s, ips, sec in rows]
    cams = []
    for i in ids:
        _, sec, mb, cpu = run([b("sfc-cam"), "--db", db, "--ckpt",
                          os.path.join(out, "final.safetensors"), "--out",
                          os.path.join(tmp, "cam"), "--scales",
                          ",".join("%g" % s for s in SCALES), "-q", i], env)
        cams.append((sec, mb, cpu))
    tsteps = os.environ.get("TORCH_STEPS", "2")
    tt = subprocess.run([PY, __file__, "torch-train", tsteps], env=env,
                        stdout=subprocess.PIPE, universal_newlines=True,
                        check=True).stdout.split()
    print("  " + " ".join(tt), file=sys.stderr)
    tc = subprocess.run([PY, __file__, "torch-cam", str(len(ids))], env=env,
                        stdout=subprocess.PIPE, universal_newlines=True,
                        check=True).stdout.split()
    print("  " + " ".join(tc), file=sys.stderr)
    load1 = open("/proc/loadavg").read().split()[:3]
    print("machine load after: %s" % " ".join(load1), file=sys.stderr)
    shutil.rmtree(tmp)
    raw = dict(steps=steps, tr_mb=tr_mb, tr_cpu=tr_cpu, cams=cams, tt=tt,
               tc=tc, tsteps=tsteps, load0=load0, load1=load1, micro=MICRO,
               date=datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"),
               fifo=os.sched_getscheduler(0) == os.SCHED_FIFO)
    with open(RAW, "w") as f:  # bench/sfc.py report re-renders it
        json.dump(raw, f)
    report(**raw)


def report(steps, tr_mb, tr_cpu, cams, tt, tc, tsteps, load0, load1,
           tcruns=None, note=None, micro=None, date=None, fifo=None):
    """note: a sentence about an incomplete run, printed under the table;
    date: when the run ended (UTC); fifo: it ran under SCHED_FIFO."""
    tcruns = tcruns or len(cams)
    now = date or datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M")
    ips = statistics.median(s[1] for s in steps)
    t_ips, t_mb, t_cpu = float(tt[1]), float(tt[2]), float(tt[3])
    cpu_img = tr_cpu / sum(s[3] for s in steps) if tr_cpu else None
    c_sec = statistics.median(c[0] for c in cams)
    c_mb = max(c[1] for c in cams)
    c_cpu = statistics.median(c[2] for c in cams)
    t_cam, t_cmb, t_ccpu = float(tc[1]), float(tc[2]), float(tc[3])
    cmd = ("`flock BENCH_LOCK chrt -f 10 nice -n 0 make bench-sfc` (under "
           "the shared bench lock, at SCHED_FIFO priority 10, so it "
           "preempts the other sessions' work" if fifo else
           "`make bench-sfc` (")
    o = [BEGIN, "## SFC training and CAM inference (bench-sfc)", "",
         "Command: " + cmd + "; bench/sfc.py run; 2 threads each: "
         "OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=2, torch.set_num_threads(2); "
         "OpenBLAS settings as the environment's). %s UTC; machine load "
         "(1/5/15 min) %s before, %s after (other sessions share the 2 "
         "cores%s). Random weights (ResNet-50, 20 classes, sides "
         "128,128,256,256): the cost is the same as with ImageNet's." % (
             now, " ".join(load0), " ".join(load1),
             "" if fifo else ", and this run did not preempt them"), "",
         "| case | engine | wall | CPU s (all threads) | peak RSS MB | "
         "speed vs PyTorch (wall) | speed vs PyTorch (CPU) |",
         "|---|---|---:|---:|---:|---:|---:|",
         "| training step, 16 + 4 bank images, 512x512, two scales, "
         "conv1..layer2 frozen%s: images/s (median of %d steps); CPU s per "
         "image | sfc-trainstep | %.3f | %s | %.0f | %.2fx | %s |" % (
             ", micro-batches of %d images" % micro
             if micro and micro < 20 else "",
             len(steps), ips, "%.2f" % cpu_img if cpu_img else "n/a", tr_mb,
             ips / t_ips, "%.2fx" % (t_cpu / cpu_img) if cpu_img else "n/a"),
         "| same (median of %s steps after a warm-up) | PyTorch | %.3f | "
         "%.2f | %.0f | - | - |" % (tsteps, t_ips, t_cpu, t_mb),
         "| CAM, one 500x375 image, scales 1, 0.5, 1.5, 2 with flips: s per "
         "image (median of %d) | sfc-cam | %.2f | %.1f | %.0f | %.2fx | "
         "%.2fx |" % (len(cams), c_sec, c_cpu, c_mb, t_cam / c_sec,
                      t_ccpu / c_cpu),
         "| same (median of %s after a warm-up) | PyTorch | %.2f | %.1f | "
         "%.0f | - | - |" % (tcruns, t_cam, t_ccpu, t_cmb), "",
         "sfc-trainstep steps (images, seconds): " + ", ".join(
             "%d: %d in %.1f s" % (s[0], s[3], s[2]) for s in steps) +
         ". sfc-trainstep's CPU s per image is the whole process's (start, "
         "schedule, images, checkpoint) over the images trained. sfc-cam per "
         "image includes starting the process, reading the weights and the "
         "db, and writing the npz (--compress 1); the PyTorch figures are "
         "the network alone. CPU seconds count every thread's time, "
         "including OpenBLAS threads waiting busily, so on a loaded machine "
         "they are an upper bound of the work."] + ([
             "", "Both sides run a step in micro-batches of %d images "
             "(sfc-trainstep --micro-batch; PyTorch runs sfc_losses on each "
             "slice, weights its loss by its share of the 20 images and "
             "accumulates the gradients): the same gradient as the whole "
             "batch up to float rounding (tests/test-sfcnet.c). The whole "
             "batch at once needs more than 10 GB in sfc-trainstep (killed "
             "by the OOM killer at 10.1 GB before micro-batching) and about "
             "18 GB in PyTorch." % micro] if micro and micro < 20 else []) + (
             ["", note] if note
                                                     else []) + [END]
    if SMOKE:
        print("\n".join(o))
        return
    bench_report.write_section(BEGIN, END, o)
    print("\n".join(o))


def main():
    a = sys.argv[1:]
    if a[:1] == ["run"]:
        cmd_run(a[1])
    elif a[:1] == ["report"]:
        report(**json.load(open(a[1] if len(a) > 1 else RAW)))
    elif a[:1] == ["torch-train"]:
        cmd_torch_train(int(a[1]))
    elif a[:1] == ["torch-cam"]:
        cmd_torch_cam(int(a[1]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
