"""The CompEffDist study kit's package: the code the notebooks call.

One subpackage per stage, named after its notebook (``notebooks/01_attributes.ipynb`` ->
:mod:`compeffdist_utils.attributes`), each holding the stage's computing modules and its ``plots``
module side by side: ``environment_and_corpus`` (00), ``attributes`` (01), ``clustering`` (02),
``instructions`` (03), ``distillation_data`` (04), ``difficulty_selection`` (05), ``student_training``
(06), ``evaluation`` (07), ``data_efficiency`` (08).

Below them, shared subpackages by job: ``core`` (params, files, hashes, progress), ``models`` (specs,
loading, device and dtype, pruning), ``teacher`` (backends, response cache, budget), ``sentibench``
(tasks, data, protocol, prompts, metrics), ``stats`` (uncertainty) and ``stage`` (the contract a notebook
follows). Above them: ``planning`` (cost before running), ``run`` (runner, lock, report) and ``cli``.
A module imports only from its own layer or below; ``docs/ARCHITECTURE.md`` draws the map.
"""
