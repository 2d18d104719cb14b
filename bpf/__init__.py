"""Kernel-side C programs of the flowlake agent, compiled by bcc at agent start (package data)."""
