#!/bin/sh
# Generates configure and Makefile.in; none of these are committed.
set -e
cd "$(dirname "$0")"
autoreconf -fi
