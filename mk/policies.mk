# Policy plugins: the example external plugin as shared objects, built with
# `make` and used by tests/test_policy_api and tests/cli_plan_plugin.sh. The
# plugin includes only include/mecbed/policy.h (opaque handles, the host
# table) and links nothing of mecbed.
PLUGIN_CFLAGS := -std=gnu11 -O2 -g $(WARN) $(if $(WERROR),-Werror) -Iinclude -fPIC -shared

$(BUILD)/plugins/greedy.so: policies/examples/greedy.c include/mecbed/policy.h
	@mkdir -p $(@D)
	$(CC) $(PLUGIN_CFLAGS) -o $@ $< -lm

# The example with declared (typed) options: the first fraction of the ops
# on the device, the rest on a server.
$(BUILD)/plugins/half.so: policies/examples/half.c include/mecbed/policy.h
	@mkdir -p $(@D)
	$(CC) $(PLUGIN_CFLAGS) -o $@ $<

# The same plugin claiming ABI version 99: mecbed must refuse it clearly.
# Outside build/plugins, which mecbed scans for plugins.
$(BUILD)/plugins-test/abi99.so: policies/examples/greedy.c include/mecbed/policy.h
	@mkdir -p $(@D)
	$(CC) $(PLUGIN_CFLAGS) -DEXAMPLE_ABI_VERSION=99 -o $@ $< -lm

# ... and claiming version 2 (no declared options): still loads.
$(BUILD)/plugins-test/greedy_v2.so: policies/examples/greedy.c include/mecbed/policy.h
	@mkdir -p $(@D)
	$(CC) $(PLUGIN_CFLAGS) -DEXAMPLE_ABI_VERSION=2 -o $@ $< -lm

.PHONY: plugins
plugins: $(BUILD)/plugins/greedy.so $(BUILD)/plugins/half.so $(BUILD)/plugins-test/abi99.so \
         $(BUILD)/plugins-test/greedy_v2.so
all: plugins

# The plugin tests load $(BUILD)/plugins/*.so: build those first.
$(BUILD)/tests/test_policy_api: | plugins

# Data plan mode finds beside an installed binary (<prefix>/share/mecbed/...,
# policies/datadir.c) and the example plugin in the plugin directory.
.PHONY: install-policies
install: install-policies
install-policies: $(BUILD)/plugins/greedy.so $(BUILD)/plugins/half.so
	install -D -m 644 -t $(DESTDIR)$(PREFIX)/share/mecbed/policies/nodetypes policies/nodetypes/*.ini
	install -D -m 644 -t $(DESTDIR)$(PREFIX)/share/mecbed/policies/profiles policies/profiles/*.csv
	install -D -m 755 $(BUILD)/plugins/greedy.so $(DESTDIR)$(PREFIX)/lib/mecbed/plugins/greedy.so
	install -D -m 755 $(BUILD)/plugins/half.so $(DESTDIR)$(PREFIX)/lib/mecbed/plugins/half.so
