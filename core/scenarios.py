"""One-click scenarios: each is a RunConfig (or a pair, for Compare) with a story.

The Home page shows them as cards, the Learn page links to them, and each
opens Explore (or Compare) with its settings in the URL and `scenario=<key>`:
the run starts on open (unless the link says `autorun=false`), and the page
shows `watch_for` beside the charts while and after it runs.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.schema import RunConfig


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    story: str          # one or two sentences: what you will see, and why
    config: RunConfig
    compare: RunConfig | None = None  # B of a Compare link; None = an Explore link
    watch_for: str = ""  # what to look at in the charts while it runs, shown beside them

    @property
    def page(self) -> str:
        return "Compare" if self.compare is not None else "Explore"

    def __repr__(self) -> str:
        return f"Scenario({self.key!r} → {self.page})"


_BASE = RunConfig(dataset="digits", width=128, steps=200, lr=0.05, optimizer="sgd", seed=0)

# Recurrent nets: recall after a lag of 30, Adam (plain SGD would take thousands of steps for the LSTM too).
# W_hh orthogonal with spectral radius 0.9 in both: the same recurrent scale, only the cell differs.
_RECURRENT = RunConfig(arch="lstm", dataset="recall", depth=1, width=64, seq_len=30, steps=200, lr=0.01,
                       optimizer="adam", batch_size=128, sigma_w=0.9, seed=0)

SCENARIOS: dict[str, Scenario] = {
    s.key: s
    for s in [
        Scenario(
            "sigmoid_vanishing", "Vanishing gradients: sigmoid at depth 20",
            "Sigmoid's slope is at most 1/4, so on the way back the variance of ∂L/∂h shrinks about 18× per "
            "layer: at depth 20 the first layer's is ~10⁻²⁴ of the last's, and the first layers barely learn.",
            _BASE.replace(depth=20, activation="sigmoid", init="xavier_normal"),
            watch_for=("In **Variance by layer**, the gradient curve Var(∂L/∂h) falls by more than a decade per layer "
                       "toward layer 1 while the forward curves stay level, from step 0 on (the backward heatmap's left "
                       "side). The loss drops only slowly: the first layers' weights hardly move (their **update:data "
                       "ratio** is far below 10⁻³)."),
        ),
        Scenario(
            "tanh_small_vs_xavier", "Tanh: a too-small init vs Xavier",
            "With weights 2.5× too small (σ_w = 0.4), each tanh layer shrinks the signal and the activations "
            "vanish with depth; Xavier keeps them at one scale.",
            _BASE.replace(depth=20, activation="tanh", init="normal", sigma_w=0.4),
            compare=_BASE.replace(depth=20, activation="tanh", init="xavier_normal"),
            watch_for=("Compare A (solid) and B (dashed): A's Var(h) drops layer after layer toward 0, B's stays near "
                       "one scale. A's gradients fade toward the input too, and B's loss falls sooner."),
        ),
        Scenario(
            "relu_xavier_vs_he", "ReLU at depth 30: Xavier vs He",
            "ReLU zeroes half of its inputs, so Xavier loses half the variance at every layer (2⁻²⁹ after 30); "
            "He's factor 2 makes up for it exactly.",
            _BASE.replace(depth=30, activation="relu", init="xavier_normal"),
            compare=_BASE.replace(depth=30, activation="relu", init="kaiming_normal"),
            watch_for=("A's forward variance halves at every layer: a straight line down on the log axis, about 2⁻²⁹ at "
                       "layer 30. B (He) stays flat. The heatmaps show it from step 0: A's fades with depth, B's does "
                       "not."),
        ),
        Scenario(
            "exploding", "Exploding activations and gradients: a too-large init",
            "σ_w = 2.5 with ReLU multiplies the variance by σ_w²/2 ≈ 3 per layer: after 20 layers the signal is "
            "10⁹ times larger, and one SGD step sends the loss to infinity.",
            _BASE.replace(depth=20, activation="relu", init="normal", sigma_w=2.5, lr=0.05),
            watch_for=("Var(h) climbs about half a decade per layer (a straight line up on the log axis); the run stops "
                       "at the first inf or nan, and the status line says in which layer and at which step. The charts "
                       "keep every record up to there."),
        ),
        Scenario(
            "batchnorm_rescue", "BatchNorm rescues a bad init",
            "The same too-small init, with BatchNorm: every layer's pre-activations are renormalized to variance 1, "
            "so the scale of the weights stops mattering for the forward pass.",
            _BASE.replace(depth=20, activation="tanh", init="normal", sigma_w=0.4),
            compare=_BASE.replace(depth=20, activation="tanh", init="normal", sigma_w=0.4, batchnorm=True),
            watch_for=("A's Var(h) vanishes with depth; B's sits at 1 in every layer (BatchNorm renormalizes each "
                       "layer), and B's loss falls while A's barely moves."),
        ),
        Scenario(
            "batchnorm_depth50", "BatchNorm's own gradient growth at depth 50",
            "Without skip connections, a deep BatchNorm network's gradients grow toward the input layer at "
            "initialization (Yang et al., 2019): BN fixes the forward scale, not the backward one.",
            _BASE.replace(depth=50, width=128, activation="relu", init="kaiming_normal", batchnorm=True, steps=100),
            watch_for=("The forward curve is flat at 1 (BatchNorm), but the gradient curve Var(∂L/∂h) rises toward layer"
                       " 1: the gradient grows on the way back, already at initialization."),
        ),
        Scenario(
            "selu_lecun", "SELU with LeCun normal: self-normalizing",
            "SELU's constants are chosen so that, with Var(W) = 1/fan_in, activations are pulled to mean 0 and "
            "variance 1 at every layer, with no BatchNorm.",
            _BASE.replace(depth=30, activation="selu", init="lecun_normal"),
            watch_for=("Var(h) stays near 1 and the mean near 0 in all 30 layers, with no BatchNorm; the dashed theory "
                       "line lies on the measured curve."),
        ),
        Scenario(
            "orthogonal_tanh", "Orthogonal + critical tanh: dynamical isometry",
            "Orthogonal weights at the edge of chaos keep the input–output Jacobian's singular values near 1, "
            "so gradients neither vanish nor explode even at depth 50.",
            _BASE.replace(depth=50, activation="tanh", init="orthogonal", sigma_w=1.0, steps=100),
            watch_for=("The forward and the backward curves both stay within about a decade over 50 layers. Change the "
                       "initializer to Xavier and press Run to see the difference at the same depth."),
        ),
        Scenario(
            "residual_100_blocks", "100 residual blocks without BatchNorm: plain explodes, Fixup does not",
            "Each plain block x ← x + F(x) adds its branch's variance to the stream: with ReLU and He that is ×3 per "
            "block, so the stream's variance is ~10⁴⁷ after 100 blocks at initialization and the first SGD step "
            "overflows. Fixup starts every branch at zero (ReZero scales it by an α from 0): the stream keeps "
            "its variance; 1/√L keeps it within a factor e² — switch Residual scaling in the sidebar to see each.",
            _BASE.replace(arch="resmlp", depth=100, activation="relu", init="kaiming_normal", batch_size=64,
                          steps=100),
            compare=_BASE.replace(arch="resmlp", residual_scale="fixup", depth=100, activation="relu",
                                  init="kaiming_normal", batch_size=64, steps=100),
        ),
        Scenario(
            "cnn_delta_orthogonal", "A 50-layer CNN at criticality with delta-orthogonal kernels",
            "Delta-orthogonal kernels (Xiao et al., 2018) act on every pixel as one orthogonal matrix, so a tanh "
            "CNN at the critical point (σ_w = 1, σ_b = 0) passes its gradient back through 50 convolutions almost "
            "undiminished (the signal itself fades only slowly, as tanh's does at criticality); the same net with "
            "Xavier's independent kernels loses the signal at the image's borders and ~200× of the gradient.",
            # batch 12: a convolution applies each weight at 64 pixels, so this is 454k parameters × 12 × 64 =
            # 349M of the default work limit's 400M (Architecture.work); batch 32 was 2.3× over it
            _BASE.replace(arch="cnn", depth=50, width=32, activation="tanh", init="delta_orthogonal", batch_size=12,
                          steps=100),
            compare=_BASE.replace(arch="cnn", depth=50, width=32, activation="tanh", init="xavier_normal",
                                  batch_size=12, steps=100),
        ),
        Scenario(
            "rnn_vs_lstm_long_lag", "Long-term dependencies: a vanilla tanh RNN forgets, an LSTM remembers",
            "The class is shown once, at the first of 30 time steps, then only noise. Going back through time, "
            "a tanh RNN multiplies its gradient by about ρ(W_hh)² E[φ′²] ≈ 0.6 per step (ρ = 0.9), so at "
            "initialization t = 1 gets ~10⁻⁶ of what t = 30 gets and the RNN stays at chance; the LSTM's cell "
            "state passes its gradient back through the forget gate (~100× more at t = 1) and it learns the "
            "task within ~150 steps.",
            _RECURRENT.replace(arch="rnn"),
            compare=_RECURRENT.replace(arch="lstm"),
        ),
    ]
}
