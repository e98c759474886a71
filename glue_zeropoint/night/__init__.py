"""The whole night: airmass/time, extinction and colour model, verdict, transparency, sky."""
