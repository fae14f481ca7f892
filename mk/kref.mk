# The reference backend (kernels/ref): -O3 lets GCC vectorise its plane
# loops. That changes no result: each vector lane is a different output
# element, and every element still gets the same float operations in the
# same order (no -ffast-math). -ffp-contract=off keeps every multiply and add
# separately rounded even when CFLAGS carry -march with FMA, so the oracle
# means the same thing on every machine and tiles stay bit-exact with the
# whole op.
$(BUILD)/obj/kernels/ref/%.o: CFLAGS += -O3 -ffp-contract=off
# The ref tests compare with textbook loops of their own bit for bit.
$(BUILD)/obj/tests/test_kernels_ref.o $(BUILD)/obj/tests/test_tiles.o: CFLAGS += -ffp-contract=off
