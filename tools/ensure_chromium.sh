#!/bin/sh
# Browser tests (tests/test_web_browser.py) drive Debian's chromium through its chromedriver.
# Installs both with apt-get when missing (as root, or with password-less sudo); never fails:
# when they cannot be installed the browser tests skip and say why. No browser downloads.
set -u
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: no apt-get here; install chromium + chromedriver yourself" \
        "(the browser tests skip meanwhile)"
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "ensure_chromium: not root: run 'sudo apt-get install chromium chromium-driver'" \
        "(the browser tests skip meanwhile)"
    exit 0
fi
echo "ensure_chromium: installing Debian's chromium and chromium-driver (apt-get) ..."
if $SUDO apt-get update -qq >/dev/null 2>&1 &&
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver \
        >/dev/null 2>&1; then
    echo "ensure_chromium: installed $(/usr/bin/chromium --version 2>/dev/null)"
else
    echo "ensure_chromium: apt-get could not install chromium chromium-driver" \
        "(the browser tests skip meanwhile)"
fi
exit 0
