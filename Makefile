# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# What Qt needs for a real window on a virtual screen, ImageMagick for screenshots, and GStreamer's RTSP
# server (run by the system Python) for the test of a real RTSP camera.
SYSTEM_PACKAGES := xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 imagemagick \
	python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
RTSP_PROBE := /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')"
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint bench clean system-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/livevis

system-deps:
	@command -v Xvfb >/dev/null && test -x /usr/bin/import && $(RTSP_PROBE) 2>/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null; }

test: $(STAMP) system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	QT_QPA_PLATFORM=offscreen OPENCV_LOG_LEVEL=ERROR $(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/livevis bench --model alexnet --weights none --source synthetic --frames 200

clean:
	rm -rf $(VENV) out
