# CUDA backend (kernels/cuda): built whenever nvcc is found, so CI always
# compiles it; `make NVCC=` builds without it. It becomes a shared object,
# $(BUILD)/lib/libmecbed-cuda.so (installed into $(PREFIX)/lib), that
# kernels/backend.c opens with dlopen only when the "cuda" backend is asked
# for: build/mecbed and the tests do not link the CUDA runtime or cuBLAS, so
# commands that never use a GPU start without loading them. Only the CUDA
# kernel test and the CUDA benchmark link the objects directly (through
# $(BUILD)/lib/libmb_cuda.a). GPU tests skip (exit 77, with the reason)
# where no GPU is present. docs/cuda.md.
NVCC ?= $(firstword $(wildcard /usr/local/cuda/bin/nvcc) $(shell command -v nvcc 2>/dev/null))

ifneq ($(strip $(NVCC)),)
# /usr/local/cuda/bin/nvcc -> /usr/local/cuda
CUDA_HOME ?= $(patsubst %/bin/,%,$(dir $(realpath $(NVCC))))
CUDA_LIBDIR ?= $(firstword $(wildcard $(CUDA_HOME)/lib64 $(CUDA_HOME)/targets/x86_64-linux/lib $(CUDA_HOME)/lib))
# SASS for Turing (sm_75: T4, the edge-gpu node type), Ampere (sm_80; its
# SASS also runs on sm_86/87/89: A10, Jetson Orin, L4) and Hopper (sm_90),
# plus compute_90 PTX that newer GPUs (Blackwell) JIT. Three architectures
# keep the compile short (CI builds this every run); override with
# CUDA_ARCHS="80 ..." / CUDA_PTX=. CUDA 13 has no sm_70 (V100) or older.
CUDA_ARCHS ?= 75 80 90
CUDA_PTX   ?= 90
NVCC_GENCODE := $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
                -gencode arch=compute_$(CUDA_PTX),code=compute_$(CUDA_PTX)
mbc_comma := ,
NVCCFLAGS ?= -O3 -g
NVCCFLAGS += -std=c++17 $(NVCC_GENCODE) -Iinclude -Ikernels/cuda -MMD -MP \
             -Xcompiler -fPIC,-pthread,-Wall,-Wextra $(if $(WERROR),-Werror all-warnings -Xcompiler -Werror) \
             $(foreach s,$(subst $(mbc_comma), ,$(SANITIZE)),-Xcompiler -fsanitize=$(s)) \
             $(if $(SANITIZE),-Xcompiler -fno-omit-frame-pointer)

CUDA_CU  := $(sort $(wildcard kernels/cuda/*.cu))
CUDA_C   := $(sort $(wildcard kernels/cuda/*.c))
CUDA_OBJ := $(patsubst %.cu,$(BUILD)/obj/%.cu.o,$(CUDA_CU)) $(patsubst %.c,$(BUILD)/obj/%.o,$(CUDA_C))
CUDA_LIB := $(BUILD)/lib/libmb_cuda.a

$(BUILD)/obj/kernels/cuda/%.cu.o: kernels/cuda/%.cu
	@mkdir -p $(@D)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@
$(BUILD)/obj/kernels/cuda/%.o: CFLAGS += -Ikernels/cuda

$(CUDA_LIB): $(CUDA_OBJ)
	@mkdir -p $(@D)
	@rm -f $@
	ar rcs $@ $^

CUDA_SO := $(BUILD)/lib/libmecbed-cuda.so
CUDA_LDLIBS := -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcublas -lcudart -lstdc++ -ldl

# The shared object carries its own copy of what it uses from core (graph
# and tensor helpers), so it needs nothing from the program that opens it;
# --exclude-libs keeps those copies private, -Bsymbolic binds the library's
# calls to its own functions, and --no-undefined makes a missing one a link
# error here rather than a dlopen error on a GPU machine.
# The transformer operators run on the host's reference kernels (kernels/ref),
# which the shared object carries too.
CUDA_REF_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(sort $(wildcard kernels/ref/*.c)))
$(CUDA_SO): $(CUDA_OBJ) $(CUDA_REF_OBJ) $(call mb_lib,core)
	@mkdir -p $(@D)
	$(CC) -shared $(LDFLAGS) -o $@ $(CUDA_OBJ) $(CUDA_REF_OBJ) $(call mb_lib,core) -Wl,--exclude-libs,ALL -Wl,-Bsymbolic \
		-Wl,--no-undefined $(CUDA_LDLIBS) -lm
all: $(CUDA_SO)

# The kernel test runs the host-emulation harness (mbc_emu_new), which is
# not reachable through the backend interface: it links the objects itself,
# and reaches the GPU through the shared object like every other program.
# (An explicit rule: it takes precedence over the Makefile's test pattern.)
$(BUILD)/tests/test_kernels_cuda: $(BUILD)/obj/tests/test_kernels_cuda.o $(CUDA_LIB) $(LIBS) | $(CUDA_SO)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< -Wl,--whole-archive $(CUDA_LIB) -Wl,--no-whole-archive $(LIBS) $(LDLIBS) \
		$(CUDA_LDLIBS) -lcmocka

.PHONY: install-cuda
install: install-cuda
install-cuda: $(CUDA_SO)
	install -D -m 755 $(CUDA_SO) $(DESTDIR)$(PREFIX)/lib/libmecbed-cuda.so

ALL_CUDA_DEPS := $(CUDA_OBJ:.o=.d) $(BUILD)/obj/bench/bench_cuda.cu.d
-include $(wildcard $(ALL_CUDA_DEPS))
# headers nvcc -MMD does not see on the first build
$(CUDA_OBJ): kernels/cuda/common.cuh kernels/cuda/mb_cuda.h kernels/backend_impl.h

CUDA_BUILT := yes
else
CUDA_BUILT := no
endif

.PHONY: cuda-info
cuda-info:
	@echo "nvcc: $(if $(strip $(NVCC)),$(NVCC) ($(shell $(NVCC) --version | tail -n 1)),none: kernels/cuda is not built)"
	@echo "archs: $(CUDA_ARCHS) + PTX $(CUDA_PTX); libs: $(CUDA_LIBDIR); backend library: $(CUDA_SO)"

# `make bench-cuda`: builds and runs bench/bench_cuda.cu on the GPU (per-model
# latency, per-conv-shape time against cuDNN). Skips (exit 77) without a GPU.
# BENCH_CUDA_ARGS passes options (e.g. --json, --repeats 9).
.PHONY: bench-cuda bench-cuda-build
ifneq ($(strip $(NVCC)),)
CUDNN_OK := $(wildcard $(CUDA_HOME)/include/cudnn.h)
BENCH_CUDA := $(BUILD)/bench/mecbed-bench-cuda
$(BUILD)/obj/bench/bench_cuda.cu.o: bench/bench_cuda.cu kernels/cuda/mb_cuda.h kernels/backend_impl.h
	@mkdir -p $(@D)
	$(NVCC) $(NVCCFLAGS) $(if $(CUDNN_OK),,-DMB_NO_CUDNN) -c $< -o $@
$(BENCH_CUDA): $(BUILD)/obj/bench/bench_cuda.cu.o $(CUDA_LIB) $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< -Wl,--whole-archive $(CUDA_LIB) -Wl,--no-whole-archive $(LIBS) \
		$(if $(CUDNN_OK),-lcudnn) $(LDLIBS) $(CUDA_LDLIBS)
bench-cuda-build: $(BENCH_CUDA)
bench-cuda: $(BENCH_CUDA)
	@$(BENCH_CUDA) $(BENCH_CUDA_ARGS); rc=$$?; [ $$rc -eq 77 ] && echo "bench-cuda: skipped (no GPU)"; [ $$rc -eq 0 ] || [ $$rc -eq 77 ]
all: bench-cuda-build
else
bench-cuda bench-cuda-build:
	@echo "bench-cuda: skipped: this build has no CUDA backend (nvcc not found)"
endif
