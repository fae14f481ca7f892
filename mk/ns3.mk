# ns-3 link backend helper: $(BUILD)/mecbed-ns3, built with g++ when Debian's
# libns3-dev (3.37) is installed (headers in /usr/include/ns3). Debian's
# pkg-config output for ns-3 is broken (-I/usr\;), so the include path and the
# library list are explicit. Without libns3 nothing is built and the ns3
# backend says so when asked for. docs/ns3.md.
NS3_INC  ?= /usr/include
CXX      ?= g++
NS3_LIBS := -lns3-core -lns3-network -lns3-internet -lns3-point-to-point -lns3-fd-net-device \
            -lns3-wifi -lns3-mobility -lns3-energy -lns3-propagation -lns3-spectrum -lns3-antenna \
            -lns3-traffic-control -lns3-bridge -lns3-lte -lns3-virtual-net-device
NS3_CXXFLAGS := -std=c++17 -O2 -g -Wall -Wextra -I$(NS3_INC) -pthread -DNS3_LOG_ENABLE=0
ifneq ($(WERROR),)
NS3_CXXFLAGS += -Werror
endif
ifneq ($(SANITIZE),)
NS3_CXXFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
endif

ifneq ($(wildcard $(NS3_INC)/ns3/fd-net-device.h),)
NS3_SRC := $(sort $(wildcard netem/ns3/*.cc))
NS3_OBJ := $(patsubst %.cc,$(BUILD)/obj/%.o,$(NS3_SRC))
all: $(BUILD)/mecbed-ns3

$(BUILD)/obj/netem/ns3/%.o: netem/ns3/%.cc
	@mkdir -p $(@D)
	$(CXX) $(NS3_CXXFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/mecbed-ns3: $(NS3_OBJ)
	$(CXX) $(NS3_CXXFLAGS) -o $@ $^ $(NS3_LIBS)

# make install puts it where an installed mecbed looks: <prefix>/libexec/mecbed/
install: install-ns3
.PHONY: install-ns3
install-ns3: $(BUILD)/mecbed-ns3
	install -D -m 755 $(BUILD)/mecbed-ns3 $(DESTDIR)$(PREFIX)/libexec/mecbed/mecbed-ns3
endif
