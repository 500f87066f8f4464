#!/bin/sh
# Makes docs/report.png, the README's picture of a --report page: the
# samples (and one damaged file, to show a failure) through imgbatch, the
# page rendered by headless Chromium. Run from the repository root after
# building (build/app/imgbatch).
set -eu
root=$PWD
demo=$(mktemp -d)
trap 'rm -rf "$demo"' EXIT
cp -r samples "$demo/photos"
printf 'not a JPEG' > "$demo/photos/broken.jpg"
cd "$demo"
PATH="$root/build/app:$PATH" imgbatch photos/ -o site/thumbs -s 320x240 -F webp -q \
    --report site/report.html --contact-sheet site/sheet.jpg || true
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --user-data-dir="$demo/chromium" --window-size=1100,760 --virtual-time-budget=5000 \
    --screenshot="$root/docs/report.png" "file://$demo/site/report.html" 2>/dev/null
