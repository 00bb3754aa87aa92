"""The features view: a layer's sparse features (a TopK SAE learnt on a folder, `livevis features train`) on the
frame, the frame's most active ones each as a map in a colour of its own, the rest of the network answering
live as features are switched off or scaled."""

from __future__ import annotations

from livevis.views import Option, Place, ViewSpec

FEATURES = ViewSpec(
    name="features",
    producer="livevis.models.features.view:FeaturesProducer",
    title="Sparse features",
    pane="livevis.app.panes.features:FeaturesPane",
    pictures=("features",),
    recorded=("features",),
    arrays=(
        ("feature_codes", "features"),
        ("feature_reconstruction", "reconstruction"),
        ("feature_explained_variance", "explained_variance"),
    ),
    options=(
        Option(
            "features",
            "",
            check=lambda value: isinstance(value, str),
            expects="a features file (.safetensors) written by `livevis features train`",
            flag="--features",
            help="encode the frame with a layer's sparse features (FILE from `livevis features train`): "
            "features.png, and with --save-activations the codes, the reconstruction and its explained variance",
        ),
        Option(
            "feature_off",
            "",
            check=lambda value: isinstance(value, str),
            expects="features as J,K (or J-K)",
            flag="--feature-off",
            help="with --features: switch these features off in the forward (the SAE's error kept); the "
            "predictions compare the network with and without them (probs, probs_edited)",
        ),
    ),
    place=Place(beside="concepts", side="tab"),
    description="features.png: the frame's most active sparse features (--features FILE)",
)
VIEWS = (FEATURES,)
