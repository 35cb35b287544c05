# The two commands of the README:
#   make demo   installs what is missing (GDAL, ONNX Runtime), builds, and classifies the bundled fixtures
#   make test   installs what is missing (also chromium, for the report test), then formatting, lints, tests
#   make install   the program, ONNX Runtime, completions and manual page under PREFIX (DESTDIR honoured)
#   make dist      a relocatable dist/classify-objects-VERSION-linux-ARCH.tar.gz
CARGO ?= cargo
BIN := target/release/classify-objects
DEMO := demo-output
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: setup build demo test lint bench bench-large fixtures clean install uninstall dist

setup:
	@scripts/setup.sh

build: setup
	$(CARGO) build --release --locked

demo: build
	@mkdir -p $(DEMO)
	$(BIN) inspect fixtures/synthetic/colors.dlpk
	$(BIN) --raster fixtures/synthetic/colors.tif --model fixtures/synthetic/colors.dlpk \
		--features fixtures/synthetic/objects.gpkg --layer polygons --output $(DEMO)/synthetic_polygons.gpkg --overwrite
	$(BIN) --raster fixtures/real/RGB.byte.tif --model fixtures/real/textline_cls.dlpk \
		--features fixtures/real/RGB.byte.foot.gpkg --output $(DEMO)/rgb_byte_footprints.gpkg --overwrite
	$(BIN) --raster fixtures/real/RGB.byte.tif --model fixtures/real/textline_cls.dlpk \
		--features fixtures/real/RGB.byte.bench_points_2000.gpkg --output $(DEMO)/rgb_byte_points.gpkg \
		--model-arguments "batch_size 32" --overwrite
	@echo "--- labels per class (synthetic fixture: every label must equal truth) ---"
	@ogrinfo -ro -q $(DEMO)/synthetic_polygons.gpkg -sql "SELECT truth, ClassLabel, COUNT(*) AS n, ROUND(AVG(Confidence), 4) AS mean_confidence FROM synthetic_polygons GROUP BY truth, ClassLabel" | grep -E '=' | paste - - - -
	@echo "--- labels per class (real model on RGB.byte points) ---"
	@ogrinfo -ro -q $(DEMO)/rgb_byte_points.gpkg -sql "SELECT ClassLabel, COUNT(*) AS n, ROUND(AVG(Confidence), 4) AS mean_confidence FROM rgb_byte_points GROUP BY ClassLabel" | grep -E '=' | paste - - -
	@echo "demo results in $(DEMO)/"

lint:
	@scripts/setup.sh --test
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

test: lint
	$(CARGO) test --locked

bench: build
	bench/run.sh

bench-large: build
	bench/large.sh

install: build
	PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" BIN="$(BIN)" scripts/install.sh

uninstall:
	PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" scripts/install.sh --uninstall

dist: build
	BIN="$(BIN)" scripts/dist.sh

fixtures:
	$(CARGO) run --example make_fixtures

clean:
	rm -rf $(DEMO) dist
	$(CARGO) clean
