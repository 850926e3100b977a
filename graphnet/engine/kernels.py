"""Sparse message and Hebbian kernels over a fixed edge structure, batched over ``G`` matrices.

Both operations act on ``G`` independent graphs that share one structure (``G = pop · k``: every
genome of a population and every synapse channel has its own edge values):

- aggregation ``y[g, r, b] = Σ_{e: row_e = r} values[g, e] · x[g, col_e, b]``,
- Hebbian (SDDMM) ``h[g, e] = Σ_b post[g, row_e, b] · pre[g, col_e, b]``.

Implementations: :class:`CSR` runs them as one block-diagonal sparse-matrix product
(``torch.sparse`` SpMM / ``sampled_addmm``) with a hand-written backward (torch's own backward
w.r.t. sparse values builds a dense ``rows × cols`` gradient: 37 GiB at 100k neurons);
:class:`GatherScatter` is the plain ``index_select`` / ``index_add`` reference the tests compare
against; :class:`Scatter` reduces with ``torch_scatter`` or PyTorch Geometric when one is
installed (the optional ``scatter`` / ``pyg`` extras). All accept the same arguments.
"""
from __future__ import annotations

import warnings

import torch

warnings.filterwarnings("ignore", ".*[Ss]parse CSR tensor support is in beta.*")


class GatherScatter:
    """Reference kernels. ``row [E]`` (receiver row in ``[0, n_rows)``), ``col [E]`` (sender)."""

    def __init__(self, row: torch.Tensor, col: torch.Tensor, n_rows: int, n_cols: int):
        self.row, self.col, self.n_rows, self.n_cols = row, col, n_rows, n_cols

    def aggregate(self, values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``values [G, E]``, ``x [G, n_cols, B]`` -> ``[G, n_rows, B]``."""
        message = x.index_select(1, self.col) * values.unsqueeze(-1)
        out = x.new_zeros(x.shape[0], self.n_rows, x.shape[2])
        return out.index_add(1, self.row, message)

    def hebbian(self, post: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
        """``post [G, n_rows, B]``, ``pre [G, n_cols, B]`` -> ``[G, E]`` (summed over B)."""
        return (post.index_select(1, self.row) * pre.index_select(1, self.col)).sum(-1)


class CSR(GatherScatter):
    """CSR kernels; ``row`` must be sorted (canonical CSR order)."""

    def __init__(self, row: torch.Tensor, col: torch.Tensor, n_rows: int, n_cols: int):
        super().__init__(row, col, n_rows, n_cols)
        self.n_edges = len(row)
        self.transpose_perm = torch.argsort(col * max(n_rows, 1) + row)
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def _structure(self, groups: int, transposed: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Block-diagonal ``(crow, col)`` of ``groups`` copies (of the transpose if asked)."""
        key = (groups, transposed)
        if key not in self._cache:
            row, col, n_rows, n_cols = self.row, self.col, self.n_rows, self.n_cols
            if transposed:
                row, col = col[self.transpose_perm], row[self.transpose_perm]
                n_rows, n_cols = n_cols, n_rows
            counts = torch.bincount(row, minlength=n_rows)
            crow = torch.zeros(n_rows + 1, dtype=torch.long, device=row.device)
            crow[1:] = counts.cumsum(0)
            shift = torch.arange(groups, device=row.device).unsqueeze(1)
            big_crow = torch.cat([(crow[:-1] + shift * self.n_edges).reshape(-1),
                                  torch.tensor([groups * self.n_edges], device=row.device)])
            big_col = (col + shift * n_cols).reshape(-1)
            self._cache[key] = (big_crow, big_col)
        return self._cache[key]

    def _matrix(self, values: torch.Tensor, transposed: bool) -> torch.Tensor:
        groups = values.shape[0]
        crow, col = self._structure(groups, transposed)
        n_rows, n_cols = (self.n_cols, self.n_rows) if transposed else (self.n_rows, self.n_cols)
        if transposed:
            values = values[:, self.transpose_perm]
        return torch.sparse_csr_tensor(crow, col, values.reshape(-1), (groups * n_rows, groups * n_cols),
                                       check_invariants=False)

    def _spmm(self, values: torch.Tensor, x: torch.Tensor, transposed: bool) -> torch.Tensor:
        groups, _, batch = x.shape
        out_rows = self.n_cols if transposed else self.n_rows
        if self.n_edges == 0:
            return x.new_zeros(groups, out_rows, batch)
        matrix = self._matrix(values.contiguous(), transposed)
        return (matrix @ x.reshape(-1, batch)).reshape(groups, out_rows, batch)

    def _sddmm(self, post: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
        groups, _, batch = post.shape
        if self.n_edges == 0:
            return post.new_zeros(groups, 0)
        pattern = self._matrix(post.new_zeros(groups, self.n_edges), transposed=False)
        out = torch.sparse.sampled_addmm(pattern, post.reshape(-1, batch), pre.reshape(-1, batch).t(), beta=0.0)
        return out.values().reshape(groups, self.n_edges)

    def aggregate(self, values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return _Aggregate.apply(values, x.contiguous(), self)

    def hebbian(self, post: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
        return _Hebbian.apply(post.contiguous(), pre.contiguous(), self)


class _Aggregate(torch.autograd.Function):
    """``y = A(values) @ x`` with ``dx = Aᵀ @ dy`` and ``dvalues = SDDMM(dy, x)``."""

    @staticmethod
    def forward(ctx, values, x, kernel: CSR):
        ctx.save_for_backward(values, x)
        ctx.kernel = kernel
        return kernel._spmm(values, x, transposed=False)

    @staticmethod
    def backward(ctx, grad):
        values, x = ctx.saved_tensors
        kernel = ctx.kernel
        grad = grad.contiguous()
        grad_values = kernel._sddmm(grad, x) if ctx.needs_input_grad[0] else None
        grad_x = kernel._spmm(values, grad, transposed=True) if ctx.needs_input_grad[1] else None
        return grad_values, grad_x, None


class _Hebbian(torch.autograd.Function):
    """``h = SDDMM(post, pre)`` with ``dpost = A(dh) @ pre`` and ``dpre = A(dh)ᵀ @ post``."""

    @staticmethod
    def forward(ctx, post, pre, kernel: CSR):
        ctx.save_for_backward(post, pre)
        ctx.kernel = kernel
        return kernel._sddmm(post, pre)

    @staticmethod
    def backward(ctx, grad):
        post, pre = ctx.saved_tensors
        kernel = ctx.kernel
        grad = grad.contiguous()
        grad_post = kernel._spmm(grad, pre, transposed=False) if ctx.needs_input_grad[0] else None
        grad_pre = kernel._spmm(grad, post, transposed=True) if ctx.needs_input_grad[1] else None
        return grad_post, grad_pre, None


class Scatter(GatherScatter):
    """Aggregation through ``torch_scatter.scatter`` (or ``torch_geometric.utils.scatter``).

    Optional: it measured no faster than :class:`CSR` on CPU; it is here for users whose
    GPU builds of these packages are tuned. The Hebbian update is the gather reference.
    """

    def __init__(self, row: torch.Tensor, col: torch.Tensor, n_rows: int, n_cols: int):
        super().__init__(row, col, n_rows, n_cols)
        self.scatter = _scatter_function()

    def aggregate(self, values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        message = x.index_select(1, self.col) * values.unsqueeze(-1)
        return self.scatter(message, self.row, dim=1, dim_size=self.n_rows, reduce="sum")


def _scatter_function():
    try:
        from torch_scatter import scatter
    except ImportError:
        try:
            from torch_geometric.utils import scatter
        except ImportError:
            raise ImportError("kernel='scatter' needs torch-scatter or torch-geometric: "
                              "pip install torch-geometric (or torch-scatter, which compiles for minutes)") from None
    return scatter
