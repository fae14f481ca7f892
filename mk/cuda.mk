# CUDA backend (kernels/cuda): built whenever nvcc is found, so CI always
# compiles it; `make NVCC=` builds without it. Adds $(BUILD)/lib/libmb_cuda.a
# and the CUDA runtime + cuBLAS to the link of build/mecbed, the tests and
# the benchmarks. GPU tests skip (exit 77, with the reason) where no GPU is
# present. docs/cuda.md.
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

# Linking. The Makefile's link rules were parsed before this file, so their
# prerequisites cannot see an addition to LIBS: name the library as an extra
# prerequisite of every binary that links it. Recipes expand late, so:
#  - $(LIBS) (tests, benchmarks, and build/mecbed whole-archive) takes it
#    through KERNEL_LIBS, between the kernels and core libraries;
#  - kernels/backend.c refers to mb_backend_cuda_new only weakly, and a weak
#    reference does not pull an archive member: -u makes it a real one.
# Any other binary that links libmb_kernels.a gets the library built first
# (order-only), so a parallel build never links a missing archive.
KERNEL_LIBS += $(CUDA_LIB)
LDFLAGS   += -Wl,--undefined=mb_backend_cuda_new
LDLIBS    += -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcublas -lcudart -lstdc++ -ldl
$(BUILD)/mecbed $(TEST_BIN) $(BUILD)/bench/mecbed-bench: $(CUDA_LIB)
$(BUILD)/lib/libmb_kernels.a: | $(CUDA_LIB)
ALL_CUDA_DEPS := $(CUDA_OBJ:.o=.d) $(BUILD)/obj/bench/bench_cuda.cu.d
-include $(wildcard $(ALL_CUDA_DEPS))
# headers nvcc -MMD does not see on the first build
$(CUDA_OBJ): kernels/cuda/common.cuh kernels/cuda/mb_cuda.h

CUDA_BUILT := yes
else
CUDA_BUILT := no
endif

.PHONY: cuda-info
cuda-info:
	@echo "nvcc: $(if $(strip $(NVCC)),$(NVCC) ($(shell $(NVCC) --version | tail -n 1)),none: kernels/cuda is not built)"
	@echo "archs: $(CUDA_ARCHS) + PTX $(CUDA_PTX); libs: $(CUDA_LIBDIR)"

# `make bench-cuda`: builds and runs bench/bench_cuda.cu on the GPU (per-model
# latency, per-conv-shape time against cuDNN). Skips (exit 77) without a GPU.
# BENCH_CUDA_ARGS passes options (e.g. --json, --repeats 9).
.PHONY: bench-cuda bench-cuda-build
ifneq ($(strip $(NVCC)),)
CUDNN_OK := $(wildcard $(CUDA_HOME)/include/cudnn.h)
BENCH_CUDA := $(BUILD)/bench/mecbed-bench-cuda
$(BUILD)/obj/bench/bench_cuda.cu.o: bench/bench_cuda.cu kernels/cuda/mb_cuda.h
	@mkdir -p $(@D)
	$(NVCC) $(NVCCFLAGS) $(if $(CUDNN_OK),,-DMB_NO_CUDNN) -c $< -o $@
$(BENCH_CUDA): $(BUILD)/obj/bench/bench_cuda.cu.o $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(if $(CUDNN_OK),-lcudnn) $(LDLIBS)
bench-cuda-build: $(BENCH_CUDA)
bench-cuda: $(BENCH_CUDA)
	@$(BENCH_CUDA) $(BENCH_CUDA_ARGS); rc=$$?; [ $$rc -eq 77 ] && echo "bench-cuda: skipped (no GPU)"; [ $$rc -eq 0 ] || [ $$rc -eq 77 ]
all: bench-cuda-build
else
bench-cuda bench-cuda-build:
	@echo "bench-cuda: skipped: this build has no CUDA backend (nvcc not found)"
endif
