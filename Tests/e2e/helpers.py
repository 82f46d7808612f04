#!/usr/bin/env python3
"""Small checks for the e2e suite (run.sh). Each subcommand prints what it saw on one line.

    helpers.py free-port                      print a free TCP port on 127.0.0.1
    helpers.py colour PNG R,G,B [--rect X,Y,W,H] [--size WxH] [--tol N] [--min-fraction F]
                                              check that the colour fills the image (or the rectangle)
    helpers.py xev-keys LOG WORD              check that xev's log has KeyPress events spelling WORD
    helpers.py wait-listen PORT SECONDS       wait until something listens on TCP PORT (from /proc,
                                              without connecting to it)
"""
import argparse
import re
import socket
import sys
import time


def free_port(_args):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
    return 0


def colour(args):
    from PIL import Image  # Pillow comes with vncdotool

    want = tuple(int(v) for v in args.rgb.split(","))
    img = Image.open(args.png).convert("RGB")
    if args.size:
        w, h = (int(v) for v in args.size.lower().split("x"))
        if img.size != (w, h):
            print(f"colour: {args.png} is {img.size[0]}x{img.size[1]}, expected {w}x{h}")
            return 1
    if args.rect:
        x, y, w, h = (int(round(float(v))) for v in args.rect.split(","))
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > img.size[0] or y + h > img.size[1]:
            print(f"colour: rectangle {x},{y},{w},{h} does not fit in the {img.size[0]}x{img.size[1]} image")
            return 1
        img = img.crop((x, y, x + w, y + h))
    # Every 4th pixel in both directions: plenty for a fill check, fast on a 2-core machine.
    total = match = 0
    for y in range(0, img.size[1], 4):
        for x in range(0, img.size[0], 4):
            px = img.getpixel((x, y))
            total += 1
            if all(abs(a - b) <= args.tol for a, b in zip(px, want)):
                match += 1
    fraction = match / total if total else 0.0
    common = img.getcolors(img.size[0] * img.size[1])
    top = max(common)[1] if common else None
    ok = fraction >= args.min_fraction
    print(f"colour: {'ok' if ok else 'FAIL'} {fraction:.2%} of {total} sampled pixels within "
          f"{args.tol} of rgb{want} (area {img.size[0]}x{img.size[1]}, most common rgb{top})")
    return 0 if ok else 1


def xev_keys(args):
    # xev prints, per key press:
    #   KeyPress event, serial 34, synthetic NO, window 0x400001,
    #       root 0x3c2, subw 0x0, time 1234, (50,50), root:(50,50),
    #       state 0x0, keycode 43 (keysym 0x68, h), same_screen YES,
    text = open(args.log, errors="replace").read()
    pressed = re.findall(r"KeyPress event.*?\(keysym 0x[0-9a-f]+, ([^)]+)\)", text, flags=re.S)
    typed = "".join(k if len(k) == 1 else f"<{k}>" for k in pressed)
    ok = args.word in typed
    print(f"xev-keys: {'ok' if ok else 'FAIL'} X server delivered {len(pressed)} key presses "
          f"{typed!r}; looking for {args.word!r}")
    return 0 if ok else 1


def listening(port):
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            # local_address is HEXIP:HEXPORT, st 0A is LISTEN
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def wait_listen(args):
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        if listening(args.port):
            print(f"wait-listen: port {args.port} is listening")
            return 0
        time.sleep(0.1)
    print(f"wait-listen: nothing listened on port {args.port} within {args.seconds}s")
    return 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("free-port").set_defaults(fn=free_port)
    c = sub.add_parser("colour")
    c.add_argument("png")
    c.add_argument("rgb")
    c.add_argument("--rect")
    c.add_argument("--size")
    c.add_argument("--tol", type=int, default=8)
    c.add_argument("--min-fraction", type=float, default=0.97)
    c.set_defaults(fn=colour)
    k = sub.add_parser("xev-keys")
    k.add_argument("log")
    k.add_argument("word")
    k.set_defaults(fn=xev_keys)
    w = sub.add_parser("wait-listen")
    w.add_argument("port", type=int)
    w.add_argument("seconds", type=float)
    w.set_defaults(fn=wait_listen)
    args = p.parse_args()
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
