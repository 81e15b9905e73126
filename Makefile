# layerfs: the quick start is `make run` then `make test`.
PREFIX ?= /usr/local
# Swift's toolchain lives in /opt/swift on this project's machines; a swift already on PATH wins.
export PATH := $(PATH):/opt/swift/usr/bin
BASE ?= $(or $(MMAP_BASE_PATH),data/mmap)
MNT ?= mountpoint
RELEASE := .build/release/layerfs
SWIFT_FLAGS ?=

.PHONY: all deps test-deps build release run unmount test model soak fuzz init-mmap test-mmap mmap-info bench bench-format install uninstall clean

all: release

deps:
	@scripts/install-deps.sh

# What the suites drive besides the product's own needs: fio (writable mounts' verify run),
# python3-venv (test-observe installs prometheus_client's parser into a venv), bc (soak).
test-deps:
	@scripts/install-deps.sh python3 python3-venv fio bc

build: deps
	swift build $(SWIFT_FLAGS)

release: deps
	swift build -c release $(SWIFT_FLAGS)

# The main job on the sample volume: build, create it if absent, show it.
run: release
	@scripts/run-sample.sh $(RELEASE) $(BASE) $(MNT)

# Undoes `run`. Nothing mounted on MNT is success, so it can run any time; a mount there that
# is not layerfs is refused by `layerfs unmount`, never unmounted. Builds nothing: without a
# built layerfs, umount(8) (root) or fusermount3 does it.
unmount:
	@mnt=$$(realpath -m -- "$(MNT)"); \
	if grep -q " $$mnt " /proc/mounts; then \
		if [ -x $(RELEASE) ]; then $(RELEASE) unmount "$$mnt"; \
		elif grep -q " $$mnt fuse.layerfs " /proc/mounts; then umount "$$mnt" 2>/dev/null || fusermount3 -u "$$mnt"; \
		else echo "$(MNT) is not a layerfs mount: left alone" >&2; exit 1; fi; \
	fi

# The whole suite: unit tests, then real mounts driven by real tools.
test: deps test-deps
	swift build $(SWIFT_FLAGS)
	swift test $(SWIFT_FLAGS)
	scripts/fuzz.sh --quick 20000
	scripts/test-cli.sh .build/debug/layerfs
	scripts/test-pack.sh .build/debug/layerfs
	scripts/test-update.sh .build/debug/layerfs
	scripts/test-mount.sh .build/debug/layerfs
	scripts/test-live.sh .build/debug/layerfs
	scripts/test-legacy.sh .build/debug/layerfs
	scripts/test-observe.sh .build/debug/layerfs
	scripts/test-cache.sh .build/debug/layerfs
	scripts/soak.sh .build/debug/layerfs 150
	scripts/test-writable.sh .build/debug/layerfs
	scripts/test-uring.sh .build/debug/layerfs

# The long soak: a mount under listings and readers while a dimension is replaced
# REPLACEMENTS times (default 1000) must release every generation it stopped serving.
soak: deps
	swift build $(SWIFT_FLAGS)
	scripts/soak.sh .build/debug/layerfs $(or $(REPLACEMENTS),1000)

init-mmap: release
	$(RELEASE) init $(BASE)

test-mmap: release
	$(RELEASE) verify $(BASE)

mmap-info: release
	$(RELEASE) info $(BASE)

bench-format: release
	scripts/bench-format.sh $(RELEASE)

bench: release
	scripts/bench.sh $(RELEASE)
	scripts/bench-format.sh $(RELEASE)
	scripts/bench-live.sh $(RELEASE)
	scripts/bench-update.sh $(RELEASE)
	scripts/bench-observe.sh $(RELEASE)
	scripts/bench-cache.sh $(RELEASE)
	scripts/bench-writable.sh $(RELEASE)
	scripts/bench-uring.sh $(RELEASE)

# The lifetime model's long run (make test runs 10 000 sequences): SEQUENCES=N SEED=first.
model: deps
	LAYERFS_MODEL_SEQUENCES=$(or $(SEQUENCES),200000) LAYERFS_MODEL_FIRST_SEED=$(or $(SEED),1) \
		swift test $(SWIFT_FLAGS) --filter LifetimeModelTests

fuzz:
	scripts/fuzz.sh $(or $(RUNS),1000000)

# The man page comes from the --help texts, through swift-argument-parser's generate-manual
# plugin (it builds the package in release, a no-op after `release`, and writes
# MAN_PAGE); the completion scripts from the built binary. SOURCE_DATE_EPOCH, when set,
# dates the man page, so that the installed files are reproducible.
MAN_PAGE := .build/plugins/GenerateManual/outputs/layerfs/layerfs.1
COMPLETIONS := .build/completions
install: release
	swift package plugin generate-manual $(if $(SOURCE_DATE_EPOCH),--date $$(date -u -d @$(SOURCE_DATE_EPOCH) +%F))
	mkdir -p $(COMPLETIONS)
	$(RELEASE) --generate-completion-script bash > $(COMPLETIONS)/layerfs.bash
	$(RELEASE) --generate-completion-script zsh > $(COMPLETIONS)/_layerfs
	install -D -m 0755 $(RELEASE) $(DESTDIR)$(PREFIX)/bin/layerfs
	install -D -m 0644 $(MAN_PAGE) $(DESTDIR)$(PREFIX)/share/man/man1/layerfs.1
	install -D -m 0644 $(COMPLETIONS)/layerfs.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/layerfs
	install -D -m 0644 $(COMPLETIONS)/_layerfs $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_layerfs

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/layerfs $(DESTDIR)$(PREFIX)/share/man/man1/layerfs.1 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/layerfs $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_layerfs

clean:
	rm -rf .build
