# Shared rules of the example Makefiles. An example sets NAMES (the objects it builds, without
# .o) and includes this file:
#
#   make               -> build/<name>.o for each name  (clang --target=bpf -mcpu=v4 -O2 -g)
#   make BUILD=/tmp/x  -> the same objects in another directory
#   make dump          -> build/<name>.dis (llvm-objdump -d -r)

CLANG   ?= $(firstword $(shell command -v clang-22 clang-21 clang-20 clang-19 2>/dev/null))
OBJDUMP ?= $(subst clang,llvm-objdump,$(CLANG))
# libbpf's headers (<bpf/bpf_helpers.h>); <linux/bpf.h> includes <asm/types.h>, which Debian
# keeps under the multiarch directory, so that one is searched last.
LIBBPF_INCLUDE ?= $(shell pkg-config --variable=includedir libbpf 2>/dev/null || echo /usr/include)
MULTIARCH ?= $(shell gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
CFLAGS  = --target=bpf -mcpu=v4 -O2 -g -Wall -fdebug-compilation-dir=. \
          -I$(LIBBPF_INCLUDE) -idirafter /usr/include/$(MULTIARCH)
BUILD   ?= build

all: $(NAMES:%=$(BUILD)/%.o)

$(BUILD):
	mkdir -p $@

$(BUILD)/%.o: %.c | $(BUILD)
	@test -n "$(CLANG)" || { echo "no clang-19..22 found: apt-get install clang-22 libbpf-dev" >&2; exit 1; }
	$(CLANG) $(CFLAGS) -c $< -o $@

dump: all
	for n in $(NAMES); do $(OBJDUMP) -d -r --print-imm-hex $(BUILD)/$$n.o > $(BUILD)/$$n.dis; done

clean:
	rm -rf $(BUILD)

.PHONY: all dump clean
