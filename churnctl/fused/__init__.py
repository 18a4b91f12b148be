"""The fused ONNX export: one graph that applies a state's feature extraction, then a model.

``text`` spells churnctl's category matching as RE2 patterns, ``builder`` adds nodes to
a graph, ``stages`` holds one emitter per stage type, ``graph`` builds the feature
subgraph, ``splice`` joins the model to it, and ``export`` is the public function.
"""
