"""Labels the operator puts on what it owns, so it and its users can select them."""

VM_LABEL = "virtstack.io/vm"
MANAGED_BY = {"app.kubernetes.io/managed-by": "virtstack"}
