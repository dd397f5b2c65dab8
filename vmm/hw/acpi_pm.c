#include "acpi_pm.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"

/* Register bits (ACPI 6.4, "Sleep Control Register", "Sleep Status Register");
 * Linux's ACPICA names them ACPI_X_SLEEP_TYPE_MASK, ACPI_X_SLEEP_ENABLE and
 * ACPI_X_WAKE_STATUS. */
#define SLEEP_CTL_SLP_TYP_SHIFT 2
#define SLEEP_CTL_SLP_TYP_MASK	0x1c
#define SLEEP_CTL_SLP_EN	0x20
#define SLEEP_STS_WAK_STS	0x80

struct acpi_pm {
	struct bus *bus;
	uint16_t ctl_port;
	uint16_t sts_port;
	void (*on_poweroff)(void *);
	void *opaque;

	/* vCPU threads write concurrently; the lock covers the status bit and
	 * the rate limiter, which is not thread-safe by itself. */
	pthread_mutex_t lock;
	bool wak_sts;
	struct log_ratelimit ratelimit;
};

static void sleep_ctl_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	(void)opaque;
	(void)offset;
	/* SLP_EN and SLP_TYP are write-only; the reserved bits read as 0. */
	memset(data, 0, len);
}

static void sleep_ctl_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct acpi_pm *pm = opaque;
	(void)offset;
	(void)len;
	uint8_t v = *(const uint8_t *)data;
	if (!(v & SLEEP_CTL_SLP_EN))
		return;
	unsigned slp_typ = (v & SLEEP_CTL_SLP_TYP_MASK) >> SLEEP_CTL_SLP_TYP_SHIFT;
	if (slp_typ == ACPI_PM_SLP_TYP_S5) {
		pm->on_poweroff(pm->opaque);
		return;
	}
	/* Only \_S5 is in the DSDT, so a guest asking for another state
	 * ignored it. Report an immediate wake-up rather than leave the guest
	 * spinning on WAK_STS. */
	pthread_mutex_lock(&pm->lock);
	pm->wak_sts = true;
	LOG_GUEST_RATELIMITED(&pm->ratelimit,
			      "ACPI sleep control: sleep type %u is not supported, only 5 (S5)",
			      slp_typ);
	pthread_mutex_unlock(&pm->lock);
}

static void sleep_sts_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct acpi_pm *pm = opaque;
	(void)offset;
	memset(data, 0, len);
	pthread_mutex_lock(&pm->lock);
	*(uint8_t *)data = pm->wak_sts ? SLEEP_STS_WAK_STS : 0;
	pthread_mutex_unlock(&pm->lock);
}

static void sleep_sts_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct acpi_pm *pm = opaque;
	(void)offset;
	(void)len;
	uint8_t v = *(const uint8_t *)data;
	pthread_mutex_lock(&pm->lock);
	if (v & SLEEP_STS_WAK_STS)
		pm->wak_sts = false;
	pthread_mutex_unlock(&pm->lock);
}

static const struct bus_ops sleep_ctl_ops = {
    .read = sleep_ctl_read,
    .write = sleep_ctl_write,
};

static const struct bus_ops sleep_sts_ops = {
    .read = sleep_sts_read,
    .write = sleep_sts_write,
};

int acpi_pm_create(struct bus *pio_bus, uint16_t ctl_port, uint16_t sts_port,
		   void (*on_poweroff)(void *), void *opaque, struct acpi_pm **out,
		   struct perr *err)
{
	if (ctl_port == sts_port)
		return perr_setx(err, -EINVAL,
				 "ACPI sleep registers: control and status share port 0x%x",
				 ctl_port);
	if (!on_poweroff)
		return perr_setx(err, -EINVAL, "ACPI sleep registers: no power-off handler");
	struct acpi_pm *pm = calloc(1, sizeof(*pm));
	if (!pm)
		return perr_set(err, -ENOMEM, "ACPI sleep registers");
	pm->bus = pio_bus;
	pm->ctl_port = ctl_port;
	pm->sts_port = sts_port;
	pm->on_poweroff = on_poweroff;
	pm->opaque = opaque;
	pthread_mutex_init(&pm->lock, NULL);

	int ret = bus_register(pio_bus, ctl_port, 1, &sleep_ctl_ops, pm);
	if (ret < 0) {
		perr_set(err, ret, "ACPI sleep control register at port 0x%x", ctl_port);
		goto err_free;
	}
	ret = bus_register(pio_bus, sts_port, 1, &sleep_sts_ops, pm);
	if (ret < 0) {
		perr_set(err, ret, "ACPI sleep status register at port 0x%x", sts_port);
		goto err_unregister_ctl;
	}
	*out = pm;
	return 0;

err_unregister_ctl:
	bus_unregister(pio_bus, ctl_port);
err_free:
	pthread_mutex_destroy(&pm->lock);
	free(pm);
	return ret;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	if (!pm)
		return;
	bus_unregister(pm->bus, pm->sts_port);
	bus_unregister(pm->bus, pm->ctl_port);
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}
