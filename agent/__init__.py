"""flowlake eBPF agent: captures flows in the kernel with bcc and ships Arrow batches to the processor.

The capture itself arrives with the agent issue; today this package holds the bcc loader the setup
and the kernel smoke test rely on.
"""

from flowlake.agent.bccload import BccUnavailable, import_bcc

__all__ = ["BccUnavailable", "import_bcc"]
