"""Few-shot ARC (SEAL's second domain): the teacher writes a test-time-training configuration, the student trains a
LoRA on augmented leave-one-out tasks built from a task's demonstrations, then predicts the test output by greedy
decoding under invertible augmentations and a vote.

Modules: ``tasks`` (loading, grids as text, grading), ``augment`` (grid augmentations and their inverses), ``ttt``
(training data per configuration), ``predict`` (augmented prediction and voting), ``solve`` (one task, a resumable
bench), ``restem`` (a ReST-EM round over the teacher's configurations). The teacher's prompt and parsing:
:mod:`teacher.arc_config`.
ARC-AGI-1 data: Apache-2.0, François Chollet (github.com/fchollet/ARC-AGI).
"""
