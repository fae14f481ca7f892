# make install PREFIX=... [DESTDIR=...]: beyond the binary, headers and
# policy data (Makefile, mk/policies.mk): the pkg-config file mecbed.pc (a
# plugin builds out of tree with `pkg-config --cflags mecbed`), man pages
# generated from the --help text (scripts/gen-man.sh), bash completion, the
# docs, the experiments, the example plugins' sources and the Python
# package. make uninstall removes all of it.
PYTHON_DIR ?= $(PREFIX)/lib/python3/dist-packages
INST        = $(DESTDIR)$(PREFIX)
MB_ABI      = $(shell sed -n 's/^\#define MB_POLICY_ABI_VERSION \([0-9]*\).*/\1/p' include/mecbed/policy.h)
MB_VER      = $(shell sed -n 's/^\#define MB_VERSION "\(.*\)"/\1/p' include/mecbed/platform.h)

.PHONY: install-extra uninstall
install: install-extra
install-extra: $(BUILD)/mecbed
	@mkdir -p $(INST)/lib/pkgconfig
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(MB_VER)|' -e 's|@ABI@|$(MB_ABI)|' \
	    scripts/mecbed.pc.in > $(INST)/lib/pkgconfig/mecbed.pc
	@rm -rf $(BUILD)/man1
	scripts/gen-man.sh $(BUILD)/mecbed $(BUILD)/man1
	install -D -m 644 -t $(INST)/share/man/man1 $(BUILD)/man1/*.1
	install -D -m 644 scripts/mecbed.bash-completion $(INST)/share/bash-completion/completions/mecbed
	install -D -m 644 -t $(INST)/share/doc/mecbed README.md
	install -D -m 644 -t $(INST)/share/doc/mecbed/docs docs/*.md
	install -D -m 644 -t $(INST)/share/mecbed/examples/plugins policies/examples/*.c
	@mkdir -p $(INST)/share/mecbed/experiments
	cp -R experiments/. $(INST)/share/mecbed/experiments/
	@mkdir -p $(DESTDIR)$(PYTHON_DIR)/mecbed
	install -m 644 -t $(DESTDIR)$(PYTHON_DIR)/mecbed python/mecbed/*.py

uninstall:
	rm -f $(INST)/bin/mecbed $(INST)/lib/pkgconfig/mecbed.pc $(INST)/lib/libmecbed-cuda.so
	rm -rf $(INST)/libexec/mecbed
	rm -f $(INST)/share/man/man1/mecbed.1 $(INST)/share/man/man1/mecbed-*.1
	rm -f $(INST)/share/bash-completion/completions/mecbed
	rm -rf $(INST)/include/mecbed $(INST)/lib/mecbed $(INST)/share/mecbed $(INST)/share/doc/mecbed
	rm -rf $(DESTDIR)$(PYTHON_DIR)/mecbed
