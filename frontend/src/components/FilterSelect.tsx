import { useId } from 'react'

interface Props {
  label: string
  /** The label of the empty choice, which means "no filter". */
  anyLabel: string
  options: readonly string[]
  value: string
  onChange: (value: string) => void
}

/** A labelled drop-down whose empty choice means "all". */
export function FilterSelect({ label, anyLabel, options, value, onChange }: Props) {
  const id = useId()
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <select id={id} value={value} onChange={(event) => onChange(event.target.value)}>
        <option value="">{anyLabel}</option>
        {options.map((name) => (
          <option key={name} value={name}>
            {name}
          </option>
        ))}
      </select>
    </div>
  )
}
