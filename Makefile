# customer_account: PGXS build
EXTENSION   = customer_account
EXTVERSION  = $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" $(EXTENSION).control)

MODULE_big  = customer_account
OBJS        = $(patsubst %.c,%.o,$(wildcard src/*.c))

DATA        = $(wildcard sql/customer_account--*.sql)
DOCS        = README.md

# pg_regress: inputs in sql/, outputs in expected/ (PostgreSQL 15 has no
# --expecteddir, so the regression inputs sit beside the extension scripts)
# every sql/*.sql except the extension scripts is a regression test
REGRESS     = $(sort $(filter-out customer_account--%,$(basename $(notdir $(wildcard sql/*.sql)))))
# UTF8 whatever the machine's locale: the tests name customers and orders
# in German and compare text in byte order up to U+10FFFF
REGRESS_OPTS = --inputdir=. --encoding=UTF8 --load-extension=pg_trgm --load-extension=customer_account

# isolation specs for everything two sessions can race on
ISOLATION   = $(basename $(notdir $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation --encoding=UTF8 --load-extension=pg_trgm --load-extension=customer_account

PG_CONFIG  ?= pg_config
PG_CPPFLAGS = -I$(srcdir)/src
# -Wno-unused-parameter: PostgreSQL 15's own headers (ilist.h, bufpage.h) trip it
PG_CFLAGS   = -Wall -Wextra -Wno-unused-parameter $(EXTRA_CFLAGS)

EXTRA_CLEAN = output_iso results regression.diffs regression.out

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

.PHONY: prove bench demo test-all
prove:
	pg_prove --ext .sql -r test/pgtap

bench:
	bash test/bench/run.sh

demo:
	bash demo/run.sh

test-all:
	bash test/run.sh
