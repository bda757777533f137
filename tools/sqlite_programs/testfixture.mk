# SQLite's testfixture with the quiesce shim linked in, built from the
# Makefile that SQLite's configure wrote (included below), with the same
# sources and flags as its own `testfixture` rule. That rule compiles every
# source inside one link command, so any change to the shim would recompile
# all of SQLite; here each source has its own object and a new shim costs
# only a relink.
#
# Use: make -f testfixture.mk QUIESCE_LIBS="libtestfixture_init.a libquiesce_core.a" testfixture-quiesce
include Makefile

QUIESCE_LIBS ?=
QUIESCE_FLAGS = -DSQLITE_EXTRA_INIT=quiesce_testfixture_init
# The test code's calls to sqlite3_step go through __wrap_sqlite3_step
# (testfixture_init.cc), where the gate mode closes the gate around random
# statements; calls inside sqlite3.c itself are not wrapped.
QUIESCE_LDFLAGS = -Wl,--wrap=sqlite3_step

TF_CFLAGS = $(TCC) -DSQLITE_NO_SYNC=1 $(TEMP_STORE) $(TESTFIXTURE_FLAGS) \
	$(QUIESCE_FLAGS)
TF_SRC = $(notdir $(TESTFIXTURE_SRC))
TF_OBJS = $(addprefix tf/,$(TF_SRC:.c=.o))

vpath %.c . $(sort $(dir $(filter-out sqlite3.c,$(TESTFIXTURE_SRC))))

# The test sources include headers that SQLite generates along with its
# amalgamation (parse.h, opcodes.h, ...).
$(TF_OBJS): | sqlite3.c

tf/%.o: %.c
	@mkdir -p tf
	$(TF_CFLAGS) -c $< -o $@

testfixture-quiesce: $(TF_OBJS) $(QUIESCE_LIBS)
	$(TF_CFLAGS) -o $@ $(TF_OBJS) $(QUIESCE_LIBS) $(QUIESCE_LDFLAGS) -lstdc++ \
	  $(LIBTCL) $(TLIBS)
