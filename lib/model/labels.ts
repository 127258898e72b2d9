// Class labels wherever they enter (a forward pass, sampling, training data): each must be
// an integer in [0, numClasses), as PyTorch's embedding lookup demands; the label table's
// null row (index numClasses) only where classifier-free guidance may use it. A label out
// of range would otherwise select no row of the one-hot lookup and condition on zeros.

export interface LabelCheck {
  /** Also accept numClasses, the null class of classifier-free guidance (internal passes only). */
  allowNull?: boolean;
  /** Names the labels' origin in the message: a file, a flag, a dataset. */
  what?: string;
}

/** The first bad label's message, or null when every label is in range. */
function labelProblem(labels: ArrayLike<number>, numClasses: number, o: LabelCheck = {}): string | null {
  const top = o.allowNull ? numClasses : numClasses - 1;
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (Number.isInteger(v) && v >= 0 && v <= top) continue;
    const range = `[0, ${numClasses})${o.allowNull ? ` or ${numClasses} (the null class of classifier-free guidance)` : ''}`;
    return `${o.what ? `${o.what}: ` : ''}label ${v}${labels.length > 1 ? ` (index ${i})` : ''} is outside the allowed range ${range}: the model has ${numClasses} classes`;
  }
  return null;
}

/** Throws when a label is outside [0, numClasses) (or is not the null class, where allowed). */
export function checkLabels(labels: ArrayLike<number>, numClasses: number, o: LabelCheck = {}): void {
  const p = labelProblem(labels, numClasses, o);
  if (p) throw new Error(p);
}
