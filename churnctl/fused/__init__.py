"""The fused ONNX export: one graph that applies a state's feature extraction, then a model.

``text`` spells churnctl's category matching as RE2 patterns, ``builder`` adds nodes to a
graph, ``columns`` holds the feature columns built so far, ``stages`` one emitter per
stage type, ``graph`` the feature subgraph, ``splice`` the model joined to it, and
``export`` the public function.
"""
