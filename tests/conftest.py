"""Session-wide test set-up: 8 CPU devices for every test.

JAX reads the device count once, when its backend starts, so it is set here,
before any test module touches a device. Single-device tests keep working:
code that must run on one device names it (a 1-device mesh or `devices=`).
"""

import jax

jax.config.update("jax_num_cpu_devices", 8)
