# ringmq -- one plain Makefile.
#   make            build bin/ringmq (and tools) with -O2 -Werror
#   make test       install what is missing (as root), build, run every test
#   make run        install, build, start the broker in the foreground
#   make SAN=1 ...  the same with AddressSanitizer + UBSan (separate build dir)

CC      ?= cc
SAN     ?= 0
PKGS    := libevent-dev libjemalloc-dev libcmocka-dev libcjson-dev libssl-dev liburing-dev \
           pkg-config mosquitto-clients mosquitto python3-paho-mqtt

CFLAGS_BASE := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow \
               -Wno-missing-field-initializers -D_GNU_SOURCE -MMD -MP \
               -I. -Icommon -Ishm -Ifrontend -Ifanout -Isupervisor
LIBS := -levent -lcjson -luring -lssl -lcrypto -ljemalloc -lpthread

ifeq ($(SAN),1)
BUILD   := build/san
BIN     := build/san/bin
CFLAGS  := $(CFLAGS_BASE) -O1 -fno-omit-frame-pointer \
           -fsanitize=address,undefined -fno-sanitize-recover=undefined \
           -DRINGMQ_NO_JEMALLOC
LDFLAGS := -fsanitize=address,undefined
LIBS    := -levent -lcjson -luring -lssl -lcrypto -lpthread
else
BUILD   := build/rel
BIN     := bin
CFLAGS  := $(CFLAGS_BASE)
LDFLAGS :=
endif

LIB_SRC := $(wildcard common/*.c shm/*.c frontend/*.c fanout/*.c supervisor/*.c)
LIB_SRC := $(filter-out supervisor/main.c,$(LIB_SRC))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
MAIN_OBJ := $(BUILD)/supervisor/main.o
LIBA    := $(BUILD)/libringmq.a

TEST_SRC := $(wildcard tests/common/test_*.c tests/shm/test_*.c tests/fanout/test_*.c tests/frontend/test_*.c tests/supervisor/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

.PHONY: all deps node-deps test unit e2e run clean format
all: $(BIN)/ringmq

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBA): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN)/ringmq: $(MAIN_OBJ) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# ---- tools/bench: ringmq-bench, the load generator (part of `make all`) ----
BENCH_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tools/bench/*.c))
all: $(BIN)/ringmq-bench
$(BIN)/ringmq-bench: $(BENCH_OBJ) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LIBS) -lm
BENCH_TEST := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/tools/bench/test_*.c))
unit: $(BENCH_TEST)
$(BUILD)/tests/tools/bench/%: tests/tools/bench/%.c $(filter-out %/bench_main.o,$(BENCH_OBJ)) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-unused-parameter -Itools/bench $(LDFLAGS) -o $@ $< $(filter %.o %.a,$^) -lcmocka $(LIBS) -lm
# ---- end tools/bench ----

# ---- tools/sendfloor: ringmq-sendfloor, the kernel's share of a fan-out ----
all: $(BIN)/ringmq-sendfloor
$(BIN)/ringmq-sendfloor: $(BUILD)/tools/sendfloor/sendfloor_main.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -luring
# ---- end tools/sendfloor ----

# ---- tools/ctl: ringmqctl, the admin socket client (part of `make all`) ----
CTL_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tools/ctl/*.c))
all: $(BIN)/ringmqctl
$(BIN)/ringmqctl: $(CTL_OBJ) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LIBS)
CTL_TEST := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/tools/ctl/test_*.c))
unit: $(CTL_TEST)
$(BUILD)/tests/tools/ctl/%: tests/tools/ctl/%.c $(filter-out %/ctl_main.o,$(CTL_OBJ)) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-unused-parameter -Itools/ctl $(LDFLAGS) -o $@ $< $(filter %.o %.a,$^) -lcmocka $(LIBS)
# ---- end tools/ctl ----

$(BUILD)/tests/%: tests/%.c $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-unused-parameter $(LDFLAGS) -o $@ $< $(LIBA) -lcmocka $(LIBS)

# Installs the Debian packages the build and the tests need, when root and
# something is missing.  Harmless otherwise.
deps:
	@missing=""; for p in $(PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing packages (run as root or install them):$$missing"; exit 1; fi; \
	fi

unit: $(TEST_BIN)

# MQTT.js for tests/e2e/test_websocket.py, from package-lock.json, once.
# Without npm or a registry the test is skipped, not failed.
NODE_DIR := tests/e2e/node
node-deps:
	@if [ ! -d $(NODE_DIR)/node_modules ]; then \
	  if command -v npm >/dev/null 2>&1; then \
	    npm ci --prefix $(NODE_DIR) --no-audit --no-fund >/dev/null 2>&1 || \
	      echo "npm ci --prefix $(NODE_DIR) failed: the MQTT.js test will be skipped"; \
	  else echo "npm not found: the MQTT.js test will be skipped"; fi; \
	fi

test: deps node-deps
	$(MAKE) all unit
	@RINGMQ_BIN=$(BIN)/ringmq RINGMQ_TESTBIN=$(BUILD)/tests tests/run_all.sh

run: deps
	$(MAKE) all
	$(BIN)/ringmq -v

clean:
	rm -rf build bin

format:
	clang-format -i $(LIB_SRC) supervisor/main.c $(TEST_SRC) */*.h

-include $(shell find build -name '*.d' 2>/dev/null)
