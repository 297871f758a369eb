# Fieldwatch: `make demo` runs everything on one machine, `make test` runs
# every test against real Mosquitto and InfluxDB. Both install what they need.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

# The Go toolchain for every recipe. go.mod names it too, but a machine whose
# environment says GOTOOLCHAIN=local ignores go.mod's toolchain line, so it is
# set here; the go command fetches it from the module proxy once.
# (`make GO_TOOLCHAIN=local` builds with whatever go is on PATH.)
GO_TOOLCHAIN ?= go1.27.3
export GOTOOLCHAIN := $(GO_TOOLCHAIN)
GO       ?= go
CACHE    ?= $(HOME)/.cache/fieldwatch
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/fieldwatch/fieldwatch/internal/version.Version=$(VERSION)
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
FUZZTIME ?= 30s

INFLUXD_VERSION := v1.8.10
INFLUXD         := $(CACHE)/influxd-$(INFLUXD_VERSION)/influxd
# NATS with JetStream: the clustered engine of docs/scaling.md, three nodes
# on loopback in the tests.
NATS_VERSION    := v2.15.2
NATS_SERVER     := $(CACHE)/nats-server-$(NATS_VERSION)/nats-server
export FIELDWATCH_CACHE := $(CACHE)

# govulncheck and its vulnerability database, both pinned and both kept in the
# cache: the database is built once per vulndb version from the OSV files in
# the golang.org/x/vulndb module (served by the module proxy), with vulndb's
# own cmd/indexdb, so the check needs no network beyond the module proxy.
GOVULNCHECK_VERSION := v1.9.0
VULNDB_VERSION      := v0.0.0-20261105234957-e22db6528018
# govulncheck type-checks the code with the go/types it was built with, so it is
# built by (and kept per) the pinned toolchain: one built by an older Go refuses
# packages that say go 1.27.
GOVULNCHECK         := $(CACHE)/govulncheck-$(GOVULNCHECK_VERSION)-$(GO_TOOLCHAIN)/govulncheck
VULNDB              := $(CACHE)/vulndb-$(VULNDB_VERSION)

# nfpm builds the Debian packages (pure Go: no dpkg-deb needed), pinned and
# kept in the cache like govulncheck. The package version is VERSION as Debian
# takes it: no leading v, "-" as "+", and 0.0.0+git before a bare commit hash.
NFPM_VERSION := v2.45.2
NFPM         := $(CACHE)/nfpm-$(NFPM_VERSION)/nfpm
PKG_VERSION  ?= $(shell echo '$(VERSION)' | sed -e 's/^v//' -e '/^[0-9][0-9]*\./!s/^/0.0.0+git/' -e 's/-/+/g')
# The packages: component:Debian-arch:GOARCH:extra-env. armhf is ARMv7 with
# hardware float, as Debian's; mipsel is soft-float, as the routers' SoCs.
PACKAGES := gateway:armhf:arm:GOARM=7 gateway:arm64:arm64: gateway:amd64:amd64: gateway:mipsel:mipsle:GOMIPS=softfloat \
            cloud:amd64:amd64: cloud:arm64:arm64:

BINARIES := fieldwatch-gateway fieldwatch-cloud fieldwatch-sim fieldwatch-demo
# The gateway's field targets: name GOOS GOARCH extra-env.
TARGETS := linux-armv6:linux:arm:GOARM=6 linux-armv7:linux:arm:GOARM=7 linux-arm64:linux:arm64: \
           linux-amd64:linux:amd64: linux-mipsle:linux:mipsle:GOMIPS=softfloat

.PHONY: build binaries cross packages deps test vet vulncheck demo demo-clean fuzz bench soak screenshots clean help vendor-ui

help:
	@echo "make demo    run the whole system with simulated sensors (dashboard URL is printed)"
	@echo "make test    install Mosquitto, InfluxDB and chromium if missing, then run every test (vet, vulncheck, go test, cross)"
	@echo "make vulncheck  govulncheck against a pinned, offline vulnerability database"
	@echo "make build   build the binaries into bin/ and the gateway for every field target into dist/"
	@echo "make packages  Debian packages of the gateway (armhf, arm64, amd64, mipsel) and the cloud (amd64, arm64) into dist/"
	@echo "make fuzz    run every fuzz test for FUZZTIME (default $(FUZZTIME))"
	@echo "make bench   run the benchmarks"
	@echo "make soak    run the fault tests with 60 s outages"
	@echo "make screenshots  the console in chromium (1280x900, 390x844, Chinese, kiosk 1920x1080) into docs/img/console-*.png"
	@echo "make vendor-ui  refresh the console's vendored browser libraries (npm ci; the result is committed)"

build: binaries cross

binaries:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ \
		./gateway/cmd/fieldwatch-gateway ./cloud/cmd/fieldwatch-cloud \
		./test/cmd/fieldwatch-sim ./test/cmd/fieldwatch-demo

# Static gateway binaries for the field devices, pure Go (CGO_ENABLED=0).
cross:
	@mkdir -p dist
	@for t in $(TARGETS); do \
		IFS=: read -r name goos goarch extra <<<"$$t"; \
		env CGO_ENABLED=0 GOOS=$$goos GOARCH=$$goarch $$extra \
			$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/fieldwatch-gateway-$$name ./gateway/cmd/fieldwatch-gateway; \
		printf '%-40s %8d bytes\n' dist/fieldwatch-gateway-$$name $$(stat -c %s dist/fieldwatch-gateway-$$name); \
	done

# Debian packages (docs/packages.md), with nfpm from the cache; each binary
# static (CGO_ENABLED=0), built into dist/pkg/ARCH/ and packaged into dist/.
packages: $(NFPM)
	@mkdir -p dist
	@for p in $(PACKAGES); do \
		IFS=: read -r comp arch goarch extra <<<"$$p"; \
		bin=dist/pkg/$$arch/fieldwatch-$$comp; \
		env CGO_ENABLED=0 GOOS=linux GOARCH=$$goarch $$extra \
			$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$bin ./$$comp/cmd/fieldwatch-$$comp; \
		conf=deploy/gateway.example.yaml; [ $$comp = gateway ] || conf=deploy/packages/cloud.yaml; \
		PKG_VERSION='$(PKG_VERSION)' PKG_ARCH=$$arch PKG_BIN=$$bin PKG_CONFIG=$$conf \
			$(NFPM) package -f deploy/packages/nfpm-$$comp.yaml -p deb -t dist/; \
	done

$(NFPM):
	@mkdir -p $(dir $@)
	GOBIN=$(dir $@) CGO_ENABLED=0 $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

# Real parts for the integration tests, from Debian: Mosquitto, libmodbus
# (an independent Modbus server, built with gcc) and mbpoll (an independent
# Modbus client); InfluxDB 1.8.10 (v2 write API + Flux) built with go install
# into the cache. chromium (headless, driven by chromedp; no browser is
# downloaded) and CJK fonts for the console's Chinese text: test/browser.
# python3: the independent HJ 212 and SL 651 peers of test/interop.
# init-system-helpers (deb-systemd-helper, which the packages' scripts enable
# their units with) and systemd (systemd-analyze verify of the units; systemd
# need not run): deploy/packages.
APT_PACKAGES := mosquitto libmodbus-dev mbpoll gcc libc6-dev pkg-config prometheus-alertmanager \
                chromium fonts-noto-cjk python3 init-system-helpers systemd

deps: $(INFLUXD) $(NATS_SERVER)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(INFLUXD):
	@echo "building influxd $(INFLUXD_VERSION) into $(dir $@) (once; about a minute)"
	@mkdir -p $(dir $@)
	GOBIN=$(dir $@) CGO_ENABLED=0 GOFLAGS=-mod=mod $(GO) install github.com/influxdata/influxdb/cmd/influxd@$(INFLUXD_VERSION)

$(NATS_SERVER):
	@echo "building nats-server $(NATS_VERSION) into $(dir $@) (once; about a minute)"
	@mkdir -p $(dir $@)
	GOBIN=$(dir $@) CGO_ENABLED=0 GOFLAGS=-mod=mod $(GO) install github.com/nats-io/nats-server/v2@$(NATS_VERSION)

# gofmt from the pinned toolchain, not whichever gofmt is first on PATH.
vet:
	$(GO) vet ./...
	@out=$$("$$($(GO) env GOROOT)/bin/gofmt" -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi

# Fails on any vulnerability that the code can reach (standard library
# included: the toolchain pinned above is what is checked).
vulncheck: $(GOVULNCHECK) $(VULNDB)/index/db.json
	$(GOVULNCHECK) -db file://$(VULNDB) ./...

$(GOVULNCHECK):
	@mkdir -p $(dir $@)
	GOBIN=$(dir $@) CGO_ENABLED=0 $(GO) install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)

# Built into a temporary folder and renamed, so an interrupted build is redone.
$(VULNDB)/index/db.json:
	@echo "building the vulnerability database $(VULNDB_VERSION) into $(VULNDB) (once)"
	@rm -rf $(VULNDB) $(VULNDB).tmp && mkdir -p $(VULNDB).tmp/bin
	GOBIN=$(VULNDB).tmp/bin CGO_ENABLED=0 $(GO) install golang.org/x/vulndb/cmd/indexdb@$(VULNDB_VERSION)
	cd $(VULNDB).tmp && $(GO) mod download golang.org/x/vulndb@$(VULNDB_VERSION) && \
		$(VULNDB).tmp/bin/indexdb -vulns "$$($(GO) env GOMODCACHE)/golang.org/x/vulndb@$(VULNDB_VERSION)/data/osv" \
			-out $(VULNDB).tmp/db
	mv $(VULNDB).tmp/db $(VULNDB) && rm -rf $(VULNDB).tmp

test: deps vet vulncheck
	$(GO) test -count=1 ./...
	$(MAKE) --no-print-directory cross

demo: binaries
	@./bin/fieldwatch-demo -bin bin -state .demo -config deploy/demo/gateway.yaml

demo-clean:
	rm -rf .demo

# Every Fuzz* target, each for FUZZTIME.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

# The system benchmarks in test/bench need Mosquitto and InfluxDB (deps);
# BenchmarkIngestSideBySide builds Telegraf into the cache on first use.
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -timeout 120m ./...

# The fault tests at full length: 60 s broker and database outages.
soak: deps
	FIELDWATCH_SOAK=1 $(GO) test -count=1 -timeout 30m -v -run 'TestFaults' ./test/e2e/
	FIELDWATCH_SOAK=1 $(GO) test -count=1 -timeout 60m -v -run 'TestDeliveryAfterOutage' ./cloud/internal/notify/

# The console's screenshots for the docs, from the browser tests.
screenshots: deps
	FIELDWATCH_SCREENSHOTS=1 $(GO) test -count=1 -v -run '^TestScreenshots$$' ./test/browser/

clean:
	rm -rf bin dist

# The console's browser libraries, pinned in cloud/internal/web/ui/package-lock.json
# and copied into cloud/internal/web/static/vendor/<lib>-<version>/, which is
# committed: go build and make demo need no npm, the binary embeds them. Run
# this only to change a version (edit package.json, npm install there, then
# this), and update static/vendor/README.md and index.html's paths.
UI_DIR    := cloud/internal/web/ui
VENDOR    := cloud/internal/web/static/vendor
UI_MODS   := $(UI_DIR)/node_modules
ui_version = $(shell node -p 'require("./$(UI_MODS)/$(1)/package.json").version')

vendor-ui:
	cd $(UI_DIR) && npm ci --ignore-scripts --no-audit --no-fund
	rm -rf $(VENDOR)/leaflet-* $(VENDOR)/uplot-* $(VENDOR)/topojson-client-* $(VENDOR)/world-atlas-*
	d=$(VENDOR)/leaflet-$(call ui_version,leaflet); mkdir -p $$d/images; \
		cp $(UI_MODS)/leaflet/dist/leaflet.js $(UI_MODS)/leaflet/dist/leaflet.css $(UI_MODS)/leaflet/LICENSE $$d/; \
		cp $(UI_MODS)/leaflet/dist/images/*.png $$d/images/; \
		sed -i '/^\/\/# sourceMappingURL=/d' $$d/leaflet.js
	d=$(VENDOR)/uplot-$(call ui_version,uplot); mkdir -p $$d; \
		cp $(UI_MODS)/uplot/dist/uPlot.iife.min.js $(UI_MODS)/uplot/dist/uPlot.min.css $(UI_MODS)/uplot/LICENSE $$d/
	d=$(VENDOR)/topojson-client-$(call ui_version,topojson-client); mkdir -p $$d; \
		cp $(UI_MODS)/topojson-client/dist/topojson-client.min.js $(UI_MODS)/topojson-client/LICENSE $$d/
	d=$(VENDOR)/world-atlas-$(call ui_version,world-atlas); mkdir -p $$d; \
		cp $(UI_MODS)/world-atlas/land-50m.json $(UI_MODS)/world-atlas/LICENSE $$d/
	@find $(VENDOR) -type f ! -name README.md -printf '%-70p %8s bytes\n' | sort

