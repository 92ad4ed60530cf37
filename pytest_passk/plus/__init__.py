"""HumanEval+ (EvalPlus): problems whose tests are data.

EvalPlus's release file gives each problem argument lists (``base_input``, the
original HumanEval tests' inputs, and ``plus_input``, hundreds more) and a float
tolerance (``atol``); the expected outputs are its canonical solution's. A run
computes them once (:mod:`.oracles`, cached on disk by the data's hash) and
turns each problem's data into an ordinary ``check(candidate)`` test (:mod:`.check`),
so its samples run through the same sandbox and judge as HumanEval's. One
execution gives both figures EvalPlus reports (:mod:`.figures`): the base tests
alone, and base and plus tests together.
"""
