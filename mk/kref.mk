# The reference backend (kernels/ref): -O3 lets GCC vectorise its plane
# loops. That changes no result: each vector lane is a different output
# element, and every element still gets the same float operations in the
# same order (no -ffast-math), so tiles stay bit-exact with the whole op.
$(BUILD)/obj/kernels/ref/%.o: CFLAGS += -O3
